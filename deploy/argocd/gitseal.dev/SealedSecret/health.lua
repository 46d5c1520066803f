-- Argo CD health check for gitseal.dev/SealedSecret.
--
-- The status follows the kstatus conventions
-- (https://github.com/kubernetes-sigs/cli-utils/blob/master/pkg/kstatus/README.md):
-- status.observedGeneration, a Ready condition with a reason and a message,
-- Reconciling while work is under way, Stalled when it cannot go on without
-- a change. The reasons are listed in gitseal's docs/operations.md.
--
-- Healthy:     Ready=True for the current generation.
-- Progressing: no status yet, a status for an older generation (the
--              controller has not seen the last change), Reconciling=True,
--              or Ready=Unknown.
-- Degraded:    Stalled=True, or Ready=False (e.g. DecryptFailed, UnknownKey,
--              VaultForbidden). The last good Secret is kept meanwhile.
--
-- Uses only Lua 5.1 base functions: Argo CD runs health checks in gopher-lua
-- without the string library unless useOpenLibs is set.
local hs = {}

local function condition(conditions, kind)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function describe(c)
  local reason = c.reason or ""
  local message = c.message or ""
  if reason == "" then
    return message
  end
  if message == "" then
    return reason
  end
  return reason .. ": " .. message
end

if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the gitseal controller"
  return hs
end

local generation = obj.metadata.generation

-- Whether a status (or condition) written for `observed` predates the spec.
local function stale(observed, required)
  if generation == nil then
    return false
  end
  if observed == nil then
    return required
  end
  return observed < generation
end

local function waiting()
  hs.status = "Progressing"
  hs.message = "Waiting for the gitseal controller to observe generation " .. tostring(generation)
  return hs
end

if stale(obj.status.observedGeneration, true) then
  return waiting()
end

local conditions = obj.status.conditions
local stalled = condition(conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled)
  return hs
end

local ready = condition(conditions, "Ready")
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end
if stale(ready.observedGeneration, false) then
  return waiting()
end
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or ""
  return hs
end

local reconciling = condition(conditions, "Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = describe(reconciling)
  return hs
end
if ready.status == "False" then
  hs.status = "Degraded"
  hs.message = describe(ready)
  return hs
end

hs.status = "Progressing"
hs.message = describe(ready)
return hs
