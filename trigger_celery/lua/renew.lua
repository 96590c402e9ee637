-- Extend a lease if we still hold it; for a run lease also push back its schedule entry.
-- A lease that expired while the store was away (and that nobody took since) is taken back by
-- the execution or attempt that held it, as long as it is still theirs: a run still EXECUTING
-- at the same seq; a task attempt not settled yet (not settled by this token, in the starts
-- hash, nor by anyone: its record at one attempt fewer). So an outage longer than the lease
-- costs no second execution, and a renewal that comes just after the attempt settled (the
-- settle deleted its lease) does not bring the lease back.
-- KEYS: lease, schedule (a run lease) or tasks (a task lease), run (a run lease) or starts
-- ARGV: token, lease_ms, run_id ('' = not a run lease), due_s, seq, idem, attempt (a task
--       lease; '' for any other lease, taken back whenever it is missing)
-- Returns 1 renewed, 2 taken back, 0 lost (another holds it, or the run or attempt moved on).
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  if ARGV[3] ~= '' then redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3]) end
  return 1
end
if current then return 0 end
if ARGV[3] ~= '' then
  local f = redis.call('HMGET', KEYS[3], 'status', 'seq')
  if f[1] ~= 'EXECUTING' or f[2] ~= ARGV[5] then return 0 end
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
elseif ARGV[6] ~= '' then
  if redis.call('HGET', KEYS[3], ARGV[6] .. ':settled_by') == ARGV[1] then return 0 end
  local raw = redis.call('HGET', KEYS[2], ARGV[6])
  if not raw then return 0 end
  local rec = decode_record(raw)
  if tonumber(rec['attempts']) + 1 ~= tonumber(ARGV[7]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 2
