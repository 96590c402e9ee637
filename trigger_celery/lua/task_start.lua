-- A dispatched task's attempt begins: check it is the current attempt and take its lease.
-- A second start of the same attempt (the first one's worker died) is counted in KEYS[3].
-- A canceled (or finished) run starts no more attempts: nothing more reaches the provider.
-- KEYS: tasks, task_lease, starts, run
-- ARGV: idem, attempt, token, lease_ms, now_s, starts_ttl_s
local status = redis.call('HGET', KEYS[4], 'status')
if status == 'CANCELED' or status == 'SUCCESS' or status == 'FAILURE' then return {'finished'} end
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return {'missing'} end
local rec = decode_record(cur)
if rec['status'] == 'COMPLETED' or rec['status'] == 'ERRORED' then return {'done'} end
if tonumber(rec['attempts']) + 1 ~= tonumber(ARGV[2]) then return {'stale'} end
if not redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[4]) then return {'busy'} end
local starts = redis.call('HINCRBY', KEYS[3], ARGV[1] .. ':' .. ARGV[2], 1)
redis.call('EXPIRE', KEYS[3], ARGV[6])
return {'ok', cur, starts}
