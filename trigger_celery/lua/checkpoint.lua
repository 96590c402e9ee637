-- Store one task record, fenced by the execution's lease token.
-- KEYS: run, tasks, lease   ARGV: token, idempotency_key, record_json
-- Returns 1 stored, 0 lease lost, -1 run canceled.
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'status') == 'CANCELED' then return -1 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1
