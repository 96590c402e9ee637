-- Append a log entry to a run, keeping at most ARGV[1]; later ones are counted as dropped.
-- KEYS: run, logs   ARGV: max_entries, entry_json
if redis.call('LLEN', KEYS[2]) >= tonumber(ARGV[1]) then
  redis.call('HINCRBY', KEYS[1], 'logs_dropped', 1)
  return 0
end
redis.call('RPUSH', KEYS[2], ARGV[2])
return 1
