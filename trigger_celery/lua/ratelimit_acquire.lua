-- Take a call slot under every limit of a connection, or tell when to try again.
--
-- Each limit is a sliding-window log: a sorted set of the times calls were let through (moved
-- to the time the call's answer came back, by the worker, once it has: a provider counts a call
-- when it arrives, which lies between the two, so a later call is let through only a full
-- period after the earlier one surely arrived). A call
-- at `now` passes when fewer than `limit` calls lie in (now - period, now], so no window of
-- `period` seconds ever holds more than `limit` calls (what providers count; no refilling
-- bucket, no burst beyond the limit). A call refused under any limit takes none of them and
-- gets a hint: the earliest time a call fits counting the calls in the log and the hints
-- already given to other waiting calls (kept in a second sorted set, member -> hint), so
-- waiting calls come back spread over the free slots instead of all at once. A hint is only a
-- hint: on return the call is checked again. `closed` (a string, epoch seconds) holds every call
-- until the provider's reset time when the provider said no requests are left.
--
-- KEYS: closed, then per limit: log, queue
-- ARGV: now_s, member (the attempt), n_limits, then per limit: limit, period_s
-- Returns '0' (let through; the call is logged under every limit) or the hint (epoch seconds,
-- as a string).
local now = tonumber(ARGV[1])
local member = ARGV[2]
local n = tonumber(ARGV[3])
local hint = now
local closed = tonumber(redis.call('GET', KEYS[1]) or '0')
if closed > now then hint = closed end
local full = {}
for i = 1, n do
  local log, queue = KEYS[2 * i], KEYS[2 * i + 1]
  local limit, period = tonumber(ARGV[2 + 2 * i]), tonumber(ARGV[3 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', log, '-inf', now - period)
  redis.call('ZREMRANGEBYSCORE', queue, '-inf', now - period)
  full[i] = redis.call('ZCARD', log) >= limit
end
local pass = hint == now
for i = 1, n do if full[i] then pass = false end end
if pass then
  for i = 1, n do
    local log, queue = KEYS[2 * i], KEYS[2 * i + 1]
    local period = tonumber(ARGV[3 + 2 * i])
    redis.call('ZADD', log, now, member)
    redis.call('PEXPIRE', log, math.ceil(period * 1000) + 1000)
    redis.call('ZREM', queue, member)
  end
  return '0'
end
-- number of entries <= x in the sorted array c
local function count_le(c, x)
  local lo, hi = 1, #c + 1
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if c[mid] <= x then lo = mid + 1 else hi = mid end
  end
  return lo - 1
end
-- whether one more call at t leaves at most `limit` calls in the window of `period` ending at t.
-- Windows ending later are not checked: hints given to other calls only spread them out, and a
-- call whose hint turns out to overbook is checked again when it comes back.
local function fits(c, limit, period, t)
  return count_le(c, t) - count_le(c, t - period) < limit
end
-- the earliest time from `base` on where a call fits: `base`, or when an entry leaves the
-- window (entry + period); holes left by calls that came early or never came are filled first.
-- After 200 candidates (a long queue), the end of the queue.
local function earliest(c, limit, period, base)
  if fits(c, limit, period, base) then return base end
  local tried = 0
  for j = 1, #c do
    local t = c[j] + period
    if t > base then
      if fits(c, limit, period, t) then return t end
      tried = tried + 1
      if tried >= 200 then break end
    end
  end
  return math.max(base, c[#c - limit + 1] + period)
end
for i = 1, n do
  local log, queue = KEYS[2 * i], KEYS[2 * i + 1]
  local limit, period = tonumber(ARGV[2 + 2 * i]), tonumber(ARGV[3 + 2 * i])
  local times = {}
  for k, t in ipairs(redis.call('ZRANGE', log, 0, -1, 'WITHSCORES')) do
    if k % 2 == 0 then table.insert(times, tonumber(t)) end
  end
  local waiting = redis.call('ZRANGE', queue, 0, -1, 'WITHSCORES')
  for j = 1, #waiting, 2 do
    if waiting[j] ~= member then table.insert(times, tonumber(waiting[j + 1])) end
  end
  table.sort(times)
  local t = earliest(times, limit, period, hint)
  if t > hint then hint = t end
end
for i = 1, n do
  local queue = KEYS[2 * i + 1]
  local period = tonumber(ARGV[3 + 2 * i])
  redis.call('ZADD', queue, hint, member)
  redis.call('PEXPIRE', queue, math.ceil((hint - now + period) * 1000) + 1000)
end
return string.format('%.6f', hint)
