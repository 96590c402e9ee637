-- Clear failed task records so a failed run can run again with fixed code.
-- KEYS: run, tasks, logs, schedule   ARGV: run_id, now_s, due_s, idem...
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing'} end
if status == 'EXECUTING' then return {'busy'} end
for i = 4, #ARGV do redis.call('HDEL', KEYS[2], ARGV[i]) end
if status ~= 'FAILURE' then return {'cleared', redis.call('HGET', KEYS[1], 'seq')} end
redis.call('HDEL', KEYS[1], 'error', 'output', 'finished_at')
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('HSET', KEYS[1], 'status', 'QUEUED', 'updated_at', ARGV[2])
for i = 1, 3 do redis.call('PERSIST', KEYS[i]) end
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
return {'requeued', seq}
