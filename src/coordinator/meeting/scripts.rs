//! The meeting's Lua scripts (docs/segments.md, "A common start"): each
//! step is one script, so it is atomic whoever gets there first. Times are
//! microseconds of Redis `TIME`.

/// `KEYS[1]` the meeting; ARGV: index, count, proposed run id, this
/// segment's entry, expiry in ms, the scenario's digest. A meeting whose
/// run has ended (past `ends`) was another run's: it is replaced. One that
/// has started and not ended is closed to newcomers.
pub(super) const ARRIVE: &str = r"
local k = KEYS[1]
local ends = redis.call('HGET', k, 'ends')
if ends then
  local t = redis.call('TIME')
  if tonumber(ends) < tonumber(t[1]) * 1000000 + tonumber(t[2]) then
    redis.call('DEL', k)
  else
    return redis.error_reply('CLOSED ' .. redis.call('HGET', k, 'start'))
  end
end
local count = redis.call('HGET', k, 'count')
if count and count ~= ARGV[2] then
  return redis.error_reply('COUNT ' .. count)
end
local digest = redis.call('HGET', k, 'digest')
if digest and digest ~= ARGV[6] then
  return redis.error_reply('DIGEST')
end
if redis.call('HSETNX', k, 'seg:' .. ARGV[1], ARGV[4]) == 0 then
  return redis.error_reply('TWICE')
end
redis.call('HSETNX', k, 'count', ARGV[2])
redis.call('HSETNX', k, 'digest', ARGV[6])
redis.call('HSETNX', k, 'run_id', ARGV[3])
redis.call('PEXPIRE', k, ARGV[5])
return redis.call('HGET', k, 'run_id')
";

/// ARGV: index, count, lead, how long the run may last (µs), expiry once
/// started (ms). Marks this segment ready; when every one is, fixes the
/// start and the end after which the meeting is stale. Returns the start,
/// or 0 while some are not ready.
pub(super) const READY: &str = r"
local k = KEYS[1]
if redis.call('EXISTS', k) == 0 then return redis.error_reply('GONE') end
redis.call('HSET', k, 'ready:' .. ARGV[1], '1')
local start = redis.call('HGET', k, 'start')
if start then return tonumber(start) end
for i = 0, tonumber(ARGV[2]) - 1 do
  if redis.call('HEXISTS', k, 'ready:' .. i) == 0 then return 0 end
end
local t = redis.call('TIME')
start = tonumber(t[1]) * 1000000 + tonumber(t[2]) + tonumber(ARGV[3])
redis.call('HSET', k, 'start', start, 'ends', start + tonumber(ARGV[4]))
redis.call('PEXPIRE', k, ARGV[5])
return start
";

/// No ARGV. Past the start's deadline: if the start was fixed meanwhile,
/// returns it (the run goes on); otherwise closes the meeting, failing
/// everyone's start, and returns 0.
pub(super) const CLOSE: &str = r"
local k = KEYS[1]
local start = redis.call('HGET', k, 'start')
if start then return tonumber(start) end
redis.call('DEL', k)
return 0
";

/// ARGV: field prefix (`sent:`, `done:` or `read:`), index, count. Sets
/// this segment's field; returns how many segments set it and how many
/// finished (`done:`), or {-1, -1} when the meeting is gone (a segment
/// failed and closed it).
pub(super) const MARK: &str = r"
local k = KEYS[1]
if redis.call('EXISTS', k) == 0 then return {-1, -1} end
redis.call('HSET', k, ARGV[1] .. ARGV[2], '1')
local marked, done = 0, 0
for i = 0, tonumber(ARGV[3]) - 1 do
  marked = marked + redis.call('HEXISTS', k, ARGV[1] .. i)
  done = done + redis.call('HEXISTS', k, 'done:' .. i)
end
return {marked, done}
";
