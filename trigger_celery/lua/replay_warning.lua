-- Record a replay mismatch on a run once per task: append the warning to the run's
-- replay_warnings (a JSON array kept on the run hash, at most ARGV[4] entries; later ones are
-- counted in replay_warnings_dropped) and its log line (at most ARGV[3] log entries).
-- A run that has finished (or expired) is left alone.
-- KEYS: run, logs   ARGV: idem, warning_json, max_log_entries, max_warnings, log_entry_json
-- Returns 1 recorded, 0 already recorded for this task (or the run is over).
local status = redis.call('HGET', KEYS[1], 'status')
if (not status) or status == 'SUCCESS' or status == 'FAILURE' or status == 'CANCELED' then
  return 0
end
local raw = redis.call('HGET', KEYS[1], 'replay_warnings')
if raw and string.find(raw, '"idem":"' .. ARGV[1] .. '"', 1, true) then return 0 end
local n = redis.call('HINCRBY', KEYS[1], 'replay_warnings_n', 1)
if n > tonumber(ARGV[4]) then
  redis.call('HINCRBY', KEYS[1], 'replay_warnings_dropped', 1)
elseif raw then
  redis.call('HSET', KEYS[1], 'replay_warnings', string.sub(raw, 1, -2) .. ',' .. ARGV[2] .. ']')
else
  redis.call('HSET', KEYS[1], 'replay_warnings', '[' .. ARGV[2] .. ']')
end
if redis.call('LLEN', KEYS[2]) >= tonumber(ARGV[3]) then
  redis.call('HINCRBY', KEYS[1], 'logs_dropped', 1)
else
  redis.call('RPUSH', KEYS[2], ARGV[5])
end
return 1
