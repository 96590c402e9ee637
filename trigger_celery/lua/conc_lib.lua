-- Concurrency keys (trigger_celery/_concurrency.py): functions prepended to the scripts that
-- admit, release and wake runs. A key's state, under its base name C (P:conc:<job>[:<key>]):
--   C:holders  zset  run_id -> epoch s admitted: runs holding a slot. A slot is tied to the run's
--                    execution lease: a holder whose run has no lease any more (it ended, or its
--                    worker died and the lease expired) is dropped by conc_purge.
--   C:line     zset  run_id -> the run's created_at (epoch s): runs waiting for a slot, oldest
--                    first (FIFO per key).
local function conc_run(prefix, id) return prefix .. ':run:{' .. id .. '}' end

-- Drop the holders whose run has no execution lease; returns how many hold a slot now.
local function conc_purge(C, prefix)
  local holders = C .. ':holders'
  for _, h in ipairs(redis.call('ZRANGE', holders, 0, -1)) do
    if redis.call('EXISTS', conc_run(prefix, h) .. ':lease') == 0 then
      redis.call('ZREM', holders, h)
    end
  end
  return redis.call('ZCARD', holders)
end

-- The first n runs of the line that can still run (finished, canceled or expired ones leave it).
local function conc_heads(C, prefix, n)
  local line, out, i = C .. ':line', {}, 0
  while #out < n do
    local id = redis.call('ZRANGE', line, i, i)[1]
    if not id then break end
    local st = redis.call('HGET', conc_run(prefix, id), 'status')
    if (not st) or st == 'SUCCESS' or st == 'FAILURE' or st == 'CANCELED' then
      redis.call('ZREM', line, id)
    else
      out[#out + 1] = id
      i = i + 1
    end
  end
  return out
end

-- Wake the heads of the line that the free slots admit: each one not in the schedule is put
-- there (due at due_s: the poller re-sends it if the message is lost) and appended to out as
-- run_id, seq, job_id, queue (the caller sends its message). A head already in the schedule has
-- a message on its way.
local function conc_wake(C, prefix, limit, schedule, due_s, out)
  local free = limit - conc_purge(C, prefix)
  if free <= 0 then return end
  for _, id in ipairs(conc_heads(C, prefix, free)) do
    if not redis.call('ZSCORE', schedule, id) then
      redis.call('ZADD', schedule, due_s, id)
      local f = redis.call('HMGET', conc_run(prefix, id), 'seq', 'job_id', 'queue')
      out[#out + 1] = id
      out[#out + 1] = f[1] or '0'
      out[#out + 1] = f[2] or ''
      out[#out + 1] = f[3] or ''
    end
  end
end
