-- Record a run's end, release its lease and start its retention clock.
-- KEYS: run, tasks, logs, lease, schedule, waitfor (an io.parallel batch's, see suspend.lua)
-- ARGV: token, run_id, status, output_json, error_json, now_s, retention_s
if redis.call('GET', KEYS[4]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[4], KEYS[6])
redis.call('ZREM', KEYS[5], ARGV[2])
redis.call('HINCRBY', KEYS[1], 'seq', 1)
if redis.call('HGET', KEYS[1], 'status') ~= 'CANCELED' then
  redis.call('HSET', KEYS[1], 'status', ARGV[3], 'output', ARGV[4], 'error', ARGV[5],
             'finished_at', ARGV[6], 'updated_at', ARGV[6])
end
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[7]) end
return 1
