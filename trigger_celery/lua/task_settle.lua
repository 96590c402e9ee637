-- A dispatched task's attempt ends: store its record and, when asked, wake its run.
-- KEYS: run, tasks, task_lease, schedule
-- ARGV: idem, token, record_json, wake ('1'/''), run_id, due_now_s
if redis.call('GET', KEYS[3]) ~= ARGV[2] then return {'lost'} end
redis.call('DEL', KEYS[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
if ARGV[4] ~= '1' then return {'stored'} end
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'WAITING' then
  redis.call('HSET', KEYS[1], 'status', 'QUEUED')
  redis.call('ZADD', KEYS[4], ARGV[6], ARGV[5])
  local f = redis.call('HMGET', KEYS[1], 'seq', 'job_id', 'queue')
  return {'wake', f[1], f[2] or '', f[3] or ''}
elseif status == 'EXECUTING' or status == 'QUEUED' then
  redis.call('HSET', KEYS[1], 'wake_pending', '1')
  return {'pending'}
end
return {'stored'}
