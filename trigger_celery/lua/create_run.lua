-- Create a run unless its idempotency key (trigger key or event id) already names one, or a run
-- with this id already exists. An existing run is never overwritten: a run id derived from an
-- event id or a schedule slot whose idempotency record expired must not bring a finished or
-- canceled run back.
-- KEYS: run, schedule, runs_index, idem ('' key name unused when ARGV[3] == '')
-- ARGV: run_id, fields_json, use_idem ('1'/''), idem_ttl_s, created_s, due_s, final ('1' = the
--       run is created finished, e.g. failed validation), retention_s
-- Returns {'created', run_id} or {'exists', existing run id}.
if ARGV[3] == '1' then
  local existing = redis.call('GET', KEYS[4])
  if existing then return {'exists', existing} end
  redis.call('SET', KEYS[4], ARGV[1], 'EX', ARGV[4])
end
if redis.call('EXISTS', KEYS[1]) == 1 then return {'exists', ARGV[1]} end
local fields = cjson.decode(ARGV[2])
for k, v in pairs(fields) do redis.call('HSET', KEYS[1], k, v) end
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
if ARGV[7] == '1' then
  redis.call('EXPIRE', KEYS[1], ARGV[8])
else
  redis.call('ZADD', KEYS[2], ARGV[6], ARGV[1])
end
return {'created', ARGV[1]}
