-- Cancel a run that has not finished. An execution in progress stops at its next write.
-- KEYS: run, tasks, logs, schedule   ARGV: run_id, now_s, retention_s
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'missing' end
if status == 'SUCCESS' or status == 'FAILURE' or status == 'CANCELED' then return status end
redis.call('HSET', KEYS[1], 'status', 'CANCELED', 'finished_at', ARGV[2], 'updated_at', ARGV[2])
redis.call('ZREM', KEYS[4], ARGV[1])
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[3]) end
return 'CANCELED'
