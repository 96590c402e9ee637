-- End this execution and leave the run waiting; a wake-up is due at ARGV[6] (schedule score).
-- A dispatched task that completed during this execution (wake_pending) makes it due now.
-- An io.parallel batch (ARGV[11..]: the idempotency keys of its dispatched tasks still in
-- flight) waits for all of them: those not yet settled go into the run's waitfor set, which
-- task_settle.lua empties, waking the run once with the last one. One already settled with an
-- error or a retry makes the run due now; wake_pending is then decided from the records
-- themselves (ARGV[10] '1': a task outside the set may also settle: keep wake_pending).
-- KEYS: run, tasks, lease, schedule, waitfor
-- ARGV: token, run_id, wake_at_s ('' = woken by a task), reason, now_s, due_s, idem ('' = none),
--       record_json, due_now_s, keep_pending ('1'/''), waitfor_ttl_s, idem...
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return {'lost'} end
if ARGV[7] ~= '' then redis.call('HSET', KEYS[2], ARGV[7], ARGV[8]) end
redis.call('DEL', KEYS[3])
redis.call('DEL', KEYS[5])
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
if redis.call('HGET', KEYS[1], 'status') == 'CANCELED' then
  redis.call('ZREM', KEYS[4], ARGV[2])
  return {'canceled', seq}
end
local now = false
if #ARGV > 11 then
  local outstanding = 0
  for i = 12, #ARGV do
    local raw = redis.call('HGET', KEYS[2], ARGV[i])
    local status = raw and cjson.decode(raw)['status']
    if status == 'ERRORED' or status == 'WAITING' then
      now = true  -- failed for good, or a retry the run must schedule
    elseif status ~= 'COMPLETED' then
      redis.call('SADD', KEYS[5], ARGV[i])
      outstanding = outstanding + 1
    end
  end
  if outstanding == 0 and ARGV[3] == '' then now = true end
  if outstanding > 0 then redis.call('EXPIRE', KEYS[5], ARGV[11]) end
  if ARGV[10] ~= '1' then redis.call('HDEL', KEYS[1], 'wake_pending') end
end
if redis.call('HGET', KEYS[1], 'wake_pending') then now = true end
if now then
  redis.call('DEL', KEYS[5])
  redis.call('HDEL', KEYS[1], 'wake_pending')
  redis.call('HSET', KEYS[1], 'status', 'QUEUED', 'updated_at', ARGV[5])
  redis.call('ZADD', KEYS[4], ARGV[9], ARGV[2])
  return {'now', seq}
end
redis.call('HSET', KEYS[1], 'status', 'WAITING', 'wake_at', ARGV[3], 'wait_reason', ARGV[4],
           'updated_at', ARGV[5])
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[2])
return {'waiting', seq}
