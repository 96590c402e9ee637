-- Extend a lease if we still hold it; for a run lease also push back its schedule entry.
-- KEYS: lease, schedule   ARGV: token, lease_ms, run_id ('' = a task lease), due_s
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if ARGV[3] ~= '' then redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3]) end
return 1
