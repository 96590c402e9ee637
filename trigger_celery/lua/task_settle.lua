-- A dispatched task's attempt ends: store its record and, when asked, wake its run.
-- A run still EXECUTING may be holding for this task (``_hold.py``; its run hash's ``held``
-- field names the task): the settle hands the hold the record on the run's notify list
-- (``<idem>\n<record>``, kept ARGV[7] ms) and sets no wake_pending, as the
-- execution goes on with it in place (if the hold gave up meanwhile, suspend.lua finds the task
-- settled). A settle that is not for good (a retry) pushes ``<idem>`` alone and sets wake_pending.
-- A run WAITING on an io.parallel batch (its waitfor set, written by suspend.lua) is woken by
-- the last of the batch's tasks to complete, or by any that fails for good or retries.
-- The attempt's starts hash (KEYS[7]) keeps the token that settled it last (``<idem>:settled_by``):
-- a renewal of the lease just after the settle (renew.lua) finds it and takes nothing back.
-- KEYS: run, tasks, task_lease, schedule, notify, waitfor, starts
-- ARGV: idem, token, record_json, wake ('1'/''), run_id, due_now_s, notify_ttl_ms,
--       completed ('1': the record is COMPLETED), settled ('1': COMPLETED or ERRORED)
if redis.call('GET', KEYS[3]) ~= ARGV[2] then return {'lost'} end
redis.call('DEL', KEYS[3])
if redis.call('EXISTS', KEYS[7]) == 1 then
  redis.call('HSET', KEYS[7], ARGV[1] .. ':settled_by', ARGV[2])
end
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
  local held = status == 'EXECUTING' and redis.call('HGET', KEYS[1], 'held') == ARGV[1]
  if held then
    redis.call('HDEL', KEYS[1], 'held')
    if ARGV[9] == '1' then
      redis.call('RPUSH', KEYS[5], ARGV[1] .. '\n' .. ARGV[3])
      redis.call('PEXPIRE', KEYS[5], ARGV[7])
      return {'pending'}
    end
    redis.call('RPUSH', KEYS[5], ARGV[1])
    redis.call('PEXPIRE', KEYS[5], ARGV[7])
  end
  -- '1': completed (an io.parallel batch's suspension reads its record), '2': anything else
  if ARGV[8] == '1' then
    redis.call('HSETNX', KEYS[1], 'wake_pending', '1')
  else
    redis.call('HSET', KEYS[1], 'wake_pending', '2')
  end
  return {'pending'}
end
return {'stored'}
