-- End this execution and leave the run waiting; a wake-up is due at ARGV[6] (schedule score).
-- A dispatched task that completed during this execution (wake_pending) makes it due now.
-- KEYS: run, tasks, lease, schedule
-- ARGV: token, run_id, wake_at_s ('' = woken by a task), reason, now_s, due_s, idem ('' = none),
--       record_json, due_now_s
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return {'lost'} end
if ARGV[7] ~= '' then redis.call('HSET', KEYS[2], ARGV[7], ARGV[8]) end
redis.call('DEL', KEYS[3])
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
if redis.call('HGET', KEYS[1], 'status') == 'CANCELED' then
  redis.call('ZREM', KEYS[4], ARGV[2])
  return {'canceled', seq}
end
if redis.call('HGET', KEYS[1], 'wake_pending') then
  redis.call('HDEL', KEYS[1], 'wake_pending')
  redis.call('HSET', KEYS[1], 'status', 'QUEUED', 'updated_at', ARGV[5])
  redis.call('ZADD', KEYS[4], ARGV[9], ARGV[2])
  return {'now', seq}
end
redis.call('HSET', KEYS[1], 'status', 'WAITING', 'wake_at', ARGV[3], 'wait_reason', ARGV[4],
           'updated_at', ARGV[5])
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[2])
return {'waiting', seq}
