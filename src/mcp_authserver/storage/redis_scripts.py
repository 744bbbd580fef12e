"""The Lua scripts of the Redis backend: every read-modify-write is one of these, on one Cluster slot.

Each does constant work: a login is one hash whose lists are bounded (`RETIRED_PER_FAMILY`), and the
revocation scripts touch a bounded number of members per call (`batch`, `prune`). `docs/storage-schema.md`
describes the keys and fields they use.
"""

from __future__ import annotations

__all__ = ["HAS_REFRESH", "PUT_UPSTREAM", "RATE", "REDEEM", "RELEASE", "REVOCATION_EVENT", "REVOCATION_SYNC",
           "ROTATE", "TOUCH"]  # fmt: skip

# A login hash: status 'p' (code not redeemed), 'a' (open grant) or 'r' (closed by a code replay).

# KEYS[1] login. ARGV: attempt, sealed grant, expires_at, refresh hash or '', now, idle ttl (s), code hashes…
REDEEM = """
local f = redis.call('HMGET', KEYS[1], 'status', 'code', 'used')
if not f[1] then return 'unknown' end
local known = false
for i = 7, #ARGV do if ARGV[i] == f[2] then known = true end end
if not known then return 'unknown' end
if f[1] == 'p' then
  redis.call('HSET', KEYS[1], 'status', 'a', 'used', ARGV[1], 'grant', ARGV[2], 'expires_at', ARGV[3],
    'current', ARGV[4], 'previous', '', 'rotated_at', '0', 'retries', '0', 'successor', '', 'retired', '', 'gen', '0')
  local left = tonumber(ARGV[3]) - tonumber(ARGV[5])
  redis.call('PEXPIRE', KEYS[1], math.max(1, math.floor(math.min(tonumber(ARGV[6]), left) * 1000)))
  return 'redeemed'
end
if f[1] == 'a' and f[3] == ARGV[1] then return 'redeemed' end
redis.call('HSET', KEYS[1], 'status', 'r')
return 'reused'
"""

# KEYS[1] login. ARGV: new hash, sealed successor, now, grace, idle ttl (s), max retries, max retired, presented
# hashes… Returns {outcome, sealed grant, generation, sealed successor}, as GrantStore.rotate_refresh_token says.
ROTATE = """
local f = redis.call('HMGET', KEYS[1], 'status', 'grant', 'expires_at', 'current', 'previous', 'rotated_at',
  'retries', 'successor', 'retired', 'gen')
if f[1] ~= 'a' then return {'unknown'} end
local function presented(value)
  if not value or value == '' then return false end
  for i = 8, #ARGV do if ARGV[i] == value then return true end end
  return false
end
local now = tonumber(ARGV[3])
if presented(f[4]) then
  local retired = f[9]
  if f[5] ~= '' then
    local items = {}
    for x in string.gmatch(retired, '%S+') do items[#items + 1] = x end
    items[#items + 1] = f[5]
    retired = table.concat(items, ' ', math.max(1, #items - tonumber(ARGV[7]) + 1))
  end
  local gen = tonumber(f[10]) + 1
  redis.call('HSET', KEYS[1], 'previous', f[4], 'current', ARGV[1], 'rotated_at', ARGV[3], 'retries', '0',
    'successor', ARGV[2], 'retired', retired, 'gen', gen)
  local left = tonumber(f[3]) - now
  redis.call('PEXPIRE', KEYS[1], math.max(1, math.floor(math.min(tonumber(ARGV[5]), left) * 1000)))
  return {'rotated', f[2], gen}
end
if presented(f[5]) then
  local grace = tonumber(ARGV[4])
  if grace > 0 and now - tonumber(f[6]) <= grace and tonumber(f[7]) < tonumber(ARGV[6]) then
    redis.call('HINCRBY', KEYS[1], 'retries', 1)
    return {'retry', f[2], tonumber(f[10]), f[8]}
  end
  return {'reused', f[2]}
end
for x in string.gmatch(f[9], '%S+') do
  if presented(x) then return {'reused', f[2]} end
end
return {'unknown'}
"""

# KEYS[1] login. ARGV: presented hashes… 1 if one of them is the current, previous or a remembered token.
HAS_REFRESH = """
local f = redis.call('HMGET', KEYS[1], 'status', 'current', 'previous', 'retired')
if f[1] ~= 'a' then return 0 end
for i = 1, #ARGV do
  local h = ARGV[i]
  if h ~= '' and (h == f[2] or h == f[3]) then return 1 end
  for x in string.gmatch(f[4], '%S+') do if x == h then return 1 end end
end
return 0
"""

# KEYS[1] login. ARGV: now, ttl (s). 1 if the grant is open.
TOUCH = """
local f = redis.call('HMGET', KEYS[1], 'status', 'expires_at')
if f[1] ~= 'a' then return 0 end
local left = tonumber(f[2]) - tonumber(ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.max(1, math.floor(math.min(tonumber(ARGV[2]), left) * 1000)))
return 1
"""

# KEYS[1] login. ARGV: sealed upstream tokens. 1 if stored (the login exists and was not closed).
PUT_UPSTREAM = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'r' then return 0 end
redis.call('HSET', KEYS[1], 'upstream', ARGV[1])
return 1
"""

# KEYS[1] lease. ARGV: owner. Deletes the lease only for its owner.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS[1] counter. ARGV: window (ms). Returns {count, ms left in the window}.
RATE = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); left = tonumber(ARGV[1]) end
return {count, left}
"""

# The revocation feed. KEYS: [1] meta hash (gen, floor, seq, n), [2] changes zset (grant → seq of its last
# event), [3] expiry zset (grant → when its entry may go), [4] state hash (grant → "cutoff expires_at"),
# [5] wake stream (one entry, replaced by every event: replicas block on it).
# ARGV[1..7] of both scripts: my generation, my cursor, now, a new generation id, the floor of a new
# generation, keep (ms), prune limit. The prelude starts a new generation when the feed cannot be trusted:
# the meta hash is gone, the members disagree with the count (a key evicted or flushed), or the caller has
# seen a later event of this generation than Redis has (a failover to a replica that lagged).
_FEED_PRELUDE = """
local m = redis.call('HMGET', KEYS[1], 'gen', 'floor', 'seq', 'n')
local gen, floor, seq, n = m[1], m[2], tonumber(m[3]), tonumber(m[4])
if (not gen) or (not seq) or (not n)
    or redis.call('ZCARD', KEYS[2]) ~= n or redis.call('ZCARD', KEYS[3]) ~= n or redis.call('HLEN', KEYS[4]) ~= n
    or (gen == ARGV[1] and tonumber(ARGV[2]) > seq) then
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
  gen, floor, seq, n = ARGV[4], ARGV[5], 0, 0
  redis.call('HSET', KEYS[1], 'gen', gen, 'floor', floor, 'seq', 0, 'n', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
end
local now = tonumber(ARGV[3])
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, tonumber(ARGV[7]))
if #expired > 0 then
  redis.call('ZREM', KEYS[2], unpack(expired))
  redis.call('ZREM', KEYS[3], unpack(expired))
  redis.call('HDEL', KEYS[4], unpack(expired))
  n = redis.call('HINCRBY', KEYS[1], 'n', -#expired)
end
local function keep()
  for i = 1, 5 do redis.call('PEXPIRE', KEYS[i], ARGV[6]) end
end
"""

# ARGV[8..10]: grant id, cutoff (its tokens of a lower generation are revoked; 0: none), expires_at of the
# entry. Returns {gen, floor, seq}.
REVOCATION_EVENT = (
    _FEED_PRELUDE
    + """
seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local cutoff, expires = tonumber(ARGV[9]), tonumber(ARGV[10])
local old = redis.call('HGET', KEYS[4], ARGV[8])
if old then
  local c, e = string.match(old, '(%S+) (%S+)')
  cutoff, expires = math.max(cutoff, tonumber(c)), math.max(expires, tonumber(e))
else
  redis.call('HINCRBY', KEYS[1], 'n', 1)
end
redis.call('HSET', KEYS[4], ARGV[8], string.format('%.0f %.3f', cutoff, expires))
redis.call('ZADD', KEYS[2], seq, ARGV[8])
redis.call('ZADD', KEYS[3], expires, ARGV[8])
redis.call('XADD', KEYS[5], 'MAXLEN', '1', '*', 'seq', seq)
keep()
return {gen, floor, seq}
"""
)

# ARGV[8]: batch. Returns {gen, floor, seq, {grant, seq, …}, {state, …}}: the changes after the caller's
# cursor (all of them, from 0, when the caller is on another generation), at most `batch`.
REVOCATION_SYNC = (
    _FEED_PRELUDE
    + """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[6]) / 2 then keep() end
local from = 0
if gen == ARGV[1] then from = tonumber(ARGV[2]) end
local items = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. from, '+inf', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[8]))
local values = {}
if #items > 0 then
  local names = {}
  for i = 1, #items, 2 do names[#names + 1] = items[i] end
  values = redis.call('HMGET', KEYS[4], unpack(names))
end
return {gen, floor, seq, items, values}
"""
)
