// BpfObject: map listing, sizing and element access.
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "args.h"
#include "bpf_object.h"
#include "errors.h"

namespace agentrace {

namespace {

constexpr uint64_t kMaxSafeInteger = 9007199254740991ull;  // 2^53 - 1

bool IsPerCpu(enum bpf_map_type type) {
  switch (type) {
    case BPF_MAP_TYPE_PERCPU_HASH:
    case BPF_MAP_TYPE_PERCPU_ARRAY:
    case BPF_MAP_TYPE_LRU_PERCPU_HASH:
    case BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE:
      return true;
    default:
      return false;
  }
}

ErrorContext MapContext() {
  ErrorContext ctx;
  ctx.phase = Phase::kMap;
  return ctx;
}

void CheckKeySize(Napi::Env env, const std::string& what,
                  const struct bpf_map* map, size_t actual) {
  size_t expected = bpf_map__key_size(map);
  if (actual == expected) return;
  throw MakeUsageError(env, what, EINVAL,
                       "key is " + std::to_string(actual) + " bytes but map '" +
                           bpf_map__name(map) + "' has keySize " +
                           std::to_string(expected));
}

}  // namespace

size_t BpfObject::ValueBufferSize(Napi::Env env, const std::string& what,
                                  const struct bpf_map* map) const {
  size_t value_size = bpf_map__value_size(map);
  if (!IsPerCpu(bpf_map__type(map))) return value_size;
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) {
    throw MakeBpfError(env, what + " (libbpf_num_possible_cpus)",
                       PositiveErr(cpus),
                       "cannot read /sys/devices/system/cpu/possible");
  }
  return ((value_size + 7) / 8) * 8 * static_cast<size_t>(cpus);
}

Napi::Value BpfObject::Maps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireOpen(env, "maps()");
  Napi::Array out = Napi::Array::New(env);
  uint32_t i = 0;
  struct bpf_map* map;
  bpf_object__for_each_map(map, obj_) {
    Napi::Object entry = Napi::Object::New(env);
    entry.Set("name", Napi::String::New(env, bpf_map__name(map)));
    entry.Set("type", Napi::Number::New(env, bpf_map__type(map)));
    entry.Set("keySize", Napi::Number::New(env, bpf_map__key_size(map)));
    entry.Set("valueSize", Napi::Number::New(env, bpf_map__value_size(map)));
    entry.Set("maxEntries", Napi::Number::New(env, bpf_map__max_entries(map)));
    out.Set(i++, entry);
  }
  return out;
}

void BpfObject::SetMaxEntries(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string name = StringArg(info, 0, "setMaxEntries()", "mapName");
  const std::string what = "setMaxEntries(" + name + ")";
  RequireOpen(env, what);
  struct bpf_map* map = FindMap(env, what, name);
  uint32_t max_entries = static_cast<uint32_t>(
      IntegerArg(info, 1, "setMaxEntries()", "maxEntries", UINT32_MAX));
  if (loaded_ || load_failed_) {
    throw MakeUsageError(env, what, EBUSY,
                         "maxEntries can only be changed before load()");
  }
  LibbpfLogScope log;
  int rc = bpf_map__set_max_entries(map, max_entries);
  if (rc != 0) throw MakeLibbpfError(env, what, PositiveErr(rc), MapContext());
}

// A `const volatile` global of the object (.rodata), set before load: the
// verifier then sees a constant and prunes the branches it rules out.
void BpfObject::SetConstant(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string name = StringArg(info, 0, "setConstant()", "name");
  const std::string what = "setConstant(" + name + ")";
  Napi::Buffer<uint8_t> value = BufferArg(info, 1, "setConstant()", "value");
  RequireOpen(env, what);
  if (loaded_ || load_failed_) {
    throw MakeUsageError(env, what, EBUSY, "constants can only be set before load()");
  }
  struct bpf_map* rodata = nullptr;
  struct bpf_map* map;
  bpf_object__for_each_map(map, obj_) {
    const std::string n = bpf_map__name(map);
    if (bpf_map__is_internal(map) && n.size() >= 7 && n.compare(n.size() - 7, 7, ".rodata") == 0) rodata = map;
  }
  const struct btf* btf = bpf_object__btf(obj_);
  int sec_id = btf ? btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC) : -ENOENT;
  if (rodata == nullptr || sec_id < 0) {
    throw MakeUsageError(env, what, ENOENT, path_ + " has no .rodata (with BTF): declare the constant `const volatile`");
  }
  const struct btf_type* sec = btf__type_by_id(btf, sec_id);
  const struct btf_var_secinfo* vs = btf_var_secinfos(sec);
  for (unsigned i = 0; i < btf_vlen(sec); i++, vs++) {
    const struct btf_type* var = btf__type_by_id(btf, vs->type);
    if (name != btf__name_by_offset(btf, var->name_off)) continue;
    if (value.Length() != vs->size) {
      throw MakeUsageError(env, what, EINVAL,
                           "value is " + std::to_string(value.Length()) + " bytes but the constant has " +
                               std::to_string(vs->size));
    }
    size_t size = 0;
    // libbpf before 1.3 returns it const; it is writable until load (skeletons write it)
    uint8_t* data = static_cast<uint8_t*>(const_cast<void*>(static_cast<const void*>(bpf_map__initial_value(rodata, &size))));
    if (data == nullptr || vs->offset + vs->size > size) {
      throw MakeUsageError(env, what, EINVAL, "the .rodata image of " + path_ + " is smaller than its BTF says");
    }
    std::memcpy(data + vs->offset, value.Data(), vs->size);
    return;
  }
  throw MakeUsageError(env, what, ENOENT, "no constant named '" + name + "' in " + path_ + "'s .rodata");
}

void BpfObject::MapUpdate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string name = StringArg(info, 0, "mapUpdate()", "mapName");
  const std::string what = "mapUpdate(" + name + ")";
  RequireOpen(env, what);
  struct bpf_map* map = FindMap(env, what, name);
  Napi::Buffer<uint8_t> key = BufferArg(info, 1, "mapUpdate()", "key");
  Napi::Buffer<uint8_t> value = BufferArg(info, 2, "mapUpdate()", "value");
  uint64_t flags = IntegerArg(info, 3, "mapUpdate()", "flags", kMaxSafeInteger,
                              /*optional=*/true, BPF_ANY);
  RequireLoaded(env, what);
  CheckKeySize(env, what, map, key.Length());
  size_t expected = ValueBufferSize(env, what, map);
  if (value.Length() != expected) {
    std::string detail = "value is " + std::to_string(value.Length()) +
                         " bytes but map '" + name + "' needs " +
                         std::to_string(expected);
    if (IsPerCpu(bpf_map__type(map))) {
      detail += " (per-CPU map: roundup(valueSize " +
                std::to_string(bpf_map__value_size(map)) +
                ", 8) * numPossibleCpus())";
    } else {
      detail += " (valueSize)";
    }
    throw MakeUsageError(env, what, EINVAL, detail);
  }
  LibbpfLogScope log;
  int rc = bpf_map__update_elem(map, key.Data(), key.Length(), value.Data(),
                                value.Length(), flags);
  if (rc != 0) throw MakeLibbpfError(env, what, PositiveErr(rc), MapContext());
}

Napi::Value BpfObject::MapLookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string name = StringArg(info, 0, "mapLookup()", "mapName");
  const std::string what = "mapLookup(" + name + ")";
  RequireOpen(env, what);
  struct bpf_map* map = FindMap(env, what, name);
  Napi::Buffer<uint8_t> key = BufferArg(info, 1, "mapLookup()", "key");
  RequireLoaded(env, what);
  CheckKeySize(env, what, map, key.Length());
  size_t size = ValueBufferSize(env, what, map);
  Napi::Buffer<uint8_t> value = Napi::Buffer<uint8_t>::New(env, size);
  LibbpfLogScope log;
  int rc = bpf_map__lookup_elem(map, key.Data(), key.Length(), value.Data(),
                                size, 0);
  if (rc == -ENOENT) return env.Null();
  if (rc != 0) throw MakeLibbpfError(env, what, PositiveErr(rc), MapContext());
  return value;
}

Napi::Value BpfObject::MapDelete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string name = StringArg(info, 0, "mapDelete()", "mapName");
  const std::string what = "mapDelete(" + name + ")";
  RequireOpen(env, what);
  struct bpf_map* map = FindMap(env, what, name);
  Napi::Buffer<uint8_t> key = BufferArg(info, 1, "mapDelete()", "key");
  RequireLoaded(env, what);
  CheckKeySize(env, what, map, key.Length());
  LibbpfLogScope log;
  int rc = bpf_map__delete_elem(map, key.Data(), key.Length(), 0);
  if (rc == -ENOENT) return Napi::Boolean::New(env, false);
  if (rc != 0) throw MakeLibbpfError(env, what, PositiveErr(rc), MapContext());
  return Napi::Boolean::New(env, true);
}

Napi::Value BpfObject::MapKeys(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string name = StringArg(info, 0, "mapKeys()", "mapName");
  const std::string what = "mapKeys(" + name + ")";
  RequireOpen(env, what);
  struct bpf_map* map = FindMap(env, what, name);
  RequireLoaded(env, what);
  const size_t key_size = bpf_map__key_size(map);
  // A map never holds more than max_entries keys; the cap also guarantees
  // termination if keys are deleted concurrently (get_next_key then restarts
  // from the first key).
  const uint32_t limit = bpf_map__max_entries(map);
  std::vector<uint8_t> prev(key_size), next(key_size);
  Napi::Array out = Napi::Array::New(env);
  uint32_t count = 0;
  LibbpfLogScope log;
  while (count < limit) {
    int rc = bpf_map__get_next_key(map, count == 0 ? nullptr : prev.data(),
                                   next.data(), key_size);
    if (rc == -ENOENT) break;
    if (rc != 0) {
      throw MakeLibbpfError(env, what, PositiveErr(rc), MapContext());
    }
    out.Set(count++, Napi::Buffer<uint8_t>::Copy(env, next.data(), key_size));
    prev.swap(next);
  }
  return out;
}

}  // namespace agentrace

namespace agentrace {

uint64_t* BpfObject::MappedWords(Napi::Env env, const std::string& what, struct bpf_map* map, size_t* words) {
  if (bpf_map__type(map) != BPF_MAP_TYPE_ARRAY || bpf_map__value_size(map) != sizeof(uint64_t) ||
      (bpf_map__map_flags(map) & BPF_F_MMAPABLE) == 0) {
    throw MakeUsageError(env, what, EINVAL, "the map must be an mmap()able array of 8-byte words (BPF_F_MMAPABLE)");
  }
  *words = bpf_map__max_entries(map);
  const std::string name = bpf_map__name(map);
  auto it = mappings_.find(name);
  if (it != mappings_.end()) return static_cast<uint64_t*>(it->second.addr);
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t len = (*words * sizeof(uint64_t) + page - 1) / page * page;
  void* addr = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(map), 0);
  if (addr == MAP_FAILED) throw MakeBpfError(env, what + " (mmap)", errno, HintFor(errno, MapContext()));
  mappings_[name] = Mapping{addr, len};
  return static_cast<uint64_t*>(addr);
}

// mapSetBit(mapName, bit, on) -> was it set: flips one bit of an mmap()able
// array of words with an atomic operation, so BPF programs updating other
// bits of the same word at the same time lose nothing.
Napi::Value BpfObject::MapSetBit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string name = StringArg(info, 0, "mapSetBit()", "mapName");
  const std::string what = "mapSetBit(" + name + ")";
  if (info.Length() < 3 || !info[1].IsNumber() || !info[2].IsBoolean()) {
    throw MakeUsageError(env, what, EINVAL, "expected (mapName, bit: number, on: boolean)");
  }
  RequireOpen(env, what);
  struct bpf_map* map = FindMap(env, what, name);
  RequireLoaded(env, what);
  const int64_t bit = info[1].As<Napi::Number>().Int64Value();
  size_t words = 0;
  uint64_t* base = MappedWords(env, what, map, &words);
  if (bit < 0 || static_cast<uint64_t>(bit) >= words * 64) {
    throw MakeUsageError(env, what, ERANGE, "bit " + std::to_string(bit) + " is outside the map's " + std::to_string(words * 64) + " bits");
  }
  uint64_t* word = base + bit / 64;
  const uint64_t mask = 1ULL << (bit % 64);
  const uint64_t before = info[2].As<Napi::Boolean>().Value() ? __atomic_fetch_or(word, mask, __ATOMIC_SEQ_CST)
                                                               : __atomic_fetch_and(word, ~mask, __ATOMIC_SEQ_CST);
  return Napi::Boolean::New(env, (before & mask) != 0);
}

}  // namespace agentrace

namespace agentrace {

// mapDrain(mapName) -> { keys: Buffer, values: Buffer, count }: takes every
// entry of a hash map out in a few BPF_MAP_LOOKUP_AND_DELETE_BATCH calls
// (keys and values back to back), instead of two syscalls per entry. An
// entry written while it runs is either taken now or left for the next call.
Napi::Value BpfObject::MapDrain(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string name = StringArg(info, 0, "mapDrain()", "mapName");
  const std::string what = "mapDrain(" + name + ")";
  RequireOpen(env, what);
  struct bpf_map* map = FindMap(env, what, name);
  RequireLoaded(env, what);
  const enum bpf_map_type type = bpf_map__type(map);
  if (type != BPF_MAP_TYPE_HASH && type != BPF_MAP_TYPE_LRU_HASH) {
    throw MakeUsageError(env, what, EINVAL, "only (LRU) hash maps can be drained");
  }
  const size_t key_size = bpf_map__key_size(map);
  const size_t value_size = bpf_map__value_size(map);
  const uint32_t limit = bpf_map__max_entries(map);
  std::vector<uint8_t> keys, values;
  uint32_t total = 0;
  uint64_t in_batch = 0, out_batch = 0;  // a hash map's batch token is a bucket index
  bool first = true;
  LibbpfLogScope log;
  uint32_t chunk = 1024;
  while (total < limit) {
    keys.resize((total + chunk) * key_size);
    values.resize((total + chunk) * value_size);
    uint32_t count = chunk;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    int rc = bpf_map_lookup_and_delete_batch(bpf_map__fd(map), first ? nullptr : &in_batch, &out_batch,
                                             keys.data() + total * key_size, values.data() + total * value_size,
                                             &count, &opts);
    int err = rc < 0 ? errno : 0;
    if (rc < 0 && err == ENOSPC && count == 0) {
      chunk *= 2;  // one bucket holds more entries than fit: ask for more
      continue;
    }
    total += count;
    if (rc < 0 && err == ENOENT) break;  // the end of the map
    if (rc < 0) throw MakeBpfError(env, what, err, HintFor(err, MapContext()));
    in_batch = out_batch;
    first = false;
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("keys", Napi::Buffer<uint8_t>::Copy(env, keys.data(), total * key_size));
  out.Set("values", Napi::Buffer<uint8_t>::Copy(env, values.data(), total * value_size));
  out.Set("count", Napi::Number::New(env, total));
  return out;
}

}  // namespace agentrace
