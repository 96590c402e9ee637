-- The poller's look at concurrency keys with waiting runs (due in conc_active): slots of
-- executions whose lease expired (their worker died) are freed and the heads of the line woken;
-- a key whose line is empty leaves conc_active.
-- KEYS: conc_active, schedule   ARGV: now_s, prefix, due_s (of a woken run), check_s, max_keys
-- Returns run_id, seq, job_id, queue of each run to send a message to (flattened).
local out = {}
local keys = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[5])
for _, C in ipairs(keys) do
  local head = conc_heads(C, ARGV[2], 1)[1]
  if not head then
    redis.call('ZREM', KEYS[1], C)
  else
    local limit = tonumber(redis.call('HGET', conc_run(ARGV[2], head), 'conc_limit')) or 1
    conc_wake(C, ARGV[2], limit, KEYS[2], ARGV[3], out)
    redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[4]), C)
  end
end
return out
