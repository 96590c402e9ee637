-- A dispatched task's attempt ends: store its record and, when asked, wake its run.
-- A run still EXECUTING may be holding for this task (``_hold.py``): the idempotency key is
-- pushed to the run's notify list (kept ARGV[7] ms; '0' = no hold, nothing pushed).
-- A run WAITING on an io.parallel batch (its waitfor set, written by suspend.lua) is woken by
-- the last of the batch's tasks to complete, or by any that fails for good or retries.
-- KEYS: run, tasks, task_lease, schedule, notify, waitfor
-- ARGV: idem, token, record_json, wake ('1'/''), run_id, due_now_s, notify_ttl_ms,
--       completed ('1': the record is COMPLETED)
if redis.call('GET', KEYS[3]) ~= ARGV[2] then return {'lost'} end
redis.call('DEL', KEYS[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
if ARGV[4] ~= '1' then return {'stored'} end
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'WAITING' then
  if ARGV[8] == '1' and redis.call('SREM', KEYS[6], ARGV[1]) == 1
      and redis.call('EXISTS', KEYS[6]) == 1 then
    return {'stored'}  -- the run waits for more of its batch
  end
  redis.call('DEL', KEYS[6])
  redis.call('HSET', KEYS[1], 'status', 'QUEUED')
  redis.call('ZADD', KEYS[4], ARGV[6], ARGV[5])
  local f = redis.call('HMGET', KEYS[1], 'seq', 'job_id', 'queue')
  return {'wake', f[1], f[2] or '', f[3] or ''}
elseif status == 'EXECUTING' or status == 'QUEUED' then
  -- '1': completed (an io.parallel batch's suspension reads its record), '2': anything else
  if ARGV[8] == '1' then
    redis.call('HSETNX', KEYS[1], 'wake_pending', '1')
  else
    redis.call('HSET', KEYS[1], 'wake_pending', '2')
  end
  if status == 'EXECUTING' and ARGV[7] ~= '0' then
    redis.call('RPUSH', KEYS[5], ARGV[1])
    redis.call('PEXPIRE', KEYS[5], ARGV[7])
  end
  return {'pending'}
end
return {'stored'}
