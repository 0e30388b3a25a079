-- Deletes only the keys that hold our value; returns how many.
local released = 0
for _, key in ipairs(KEYS) do
  if redis.pcall("GET", key) == ARGV[1] then
    redis.call("DEL", key)
    released = released + 1
  end
end
return released
