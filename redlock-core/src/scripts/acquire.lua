-- Grants only when every key is free or already holds our value; all or nothing.
-- A key of another type (GET fails) counts as held by someone else.
-- KEYS: the lock's keys; ARGV[1]: our value; ARGV[2]: the TTL in milliseconds.
local created = {}
local ours = {}
for _, key in ipairs(KEYS) do
  if redis.call("SET", key, ARGV[1], "NX", "PX", ARGV[2]) then
    created[#created + 1] = key
  elseif redis.pcall("GET", key) == ARGV[1] then
    ours[#ours + 1] = key
  else
    for _, done in ipairs(created) do
      redis.call("DEL", done)
    end
    return 0
  end
end
local ttl = tonumber(ARGV[2])
for _, key in ipairs(ours) do
  if redis.call("PTTL", key) < ttl then
    redis.call("PEXPIRE", key, ARGV[2])
  end
end
return 1
