-- An execution of a run with a concurrency key ended (finished, suspended or stopped): give up
-- its slot unless a newer execution of the run holds the lease, and wake the runs of the key's
-- line that the free slots admit.
-- KEYS: run, lease, schedule, conc_active
-- ARGV: run_id, token, prefix, due_s (schedule entry of a woken run), now_s, conc_check_s
-- Returns run_id, seq, job_id, queue of each run to send a message to (flattened).
local C = redis.call('HGET', KEYS[1], 'conc_key')
if not C or C == '' then return {} end
local cur = redis.call('GET', KEYS[2])
if (not cur) or cur == ARGV[2] then redis.call('ZREM', C .. ':holders', ARGV[1]) end
local out = {}
conc_wake(C, ARGV[3], tonumber(redis.call('HGET', KEYS[1], 'conc_limit')) or 1, KEYS[3],
          ARGV[4], out)
if redis.call('ZCARD', C .. ':line') > 0 then
  redis.call('ZADD', KEYS[4], 'NX', tonumber(ARGV[5]) + tonumber(ARGV[6]), C)
end
return out
