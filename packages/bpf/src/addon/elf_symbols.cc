#include "elf_symbols.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <string>

#include "args.h"
#include "errors.h"

namespace agentrace {

namespace {

struct ElfFile {
  int fd = -1;
  Elf* elf = nullptr;
  ~ElfFile() {
    if (elf != nullptr) elf_end(elf);
    if (fd >= 0) close(fd);
  }
};

// The file offset of a function symbol, as libbpf computes it for uprobes:
// its address relative to its section, plus the section's file offset.
bool FileOffset(Elf* elf, const GElf_Sym& sym, uint64_t* out) {
  Elf_Scn* scn = elf_getscn(elf, sym.st_shndx);
  GElf_Shdr sh;
  if (scn == nullptr || gelf_getshdr(scn, &sh) == nullptr) return false;
  *out = sym.st_value - sh.sh_addr + sh.sh_offset;
  return true;
}

// The names argument (args[1]) of both functions.
std::set<std::string> WantedNames(const Napi::CallbackInfo& info, const char* fn) {
  if (info.Length() < 2 || !info[1].IsArray()) {
    throw MakeUsageError(info.Env(), fn, EINVAL, "names must be an array of strings");
  }
  Napi::Array names = info[1].As<Napi::Array>();
  std::set<std::string> wanted;
  for (uint32_t i = 0; i < names.Length(); i++) wanted.insert(names.Get(i).ToString().Utf8Value());
  return wanted;
}

// Opens `path` for reading as an ELF file; throws what went wrong.
void OpenElf(Napi::Env env, const std::string& path, const std::string& what, ElfFile* f) {
  if (elf_version(EV_CURRENT) == EV_NONE) throw MakeBpfError(env, what, EINVAL, "libelf is too old");
  f->fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f->fd < 0) throw MakeBpfError(env, what, errno, "cannot open the binary");
  f->elf = elf_begin(f->fd, ELF_C_READ_MMAP, nullptr);
  if (f->elf == nullptr || elf_kind(f->elf) != ELF_K_ELF) {
    throw MakeBpfError(env, what, ENOEXEC, std::string("not an ELF file: ") + elf_errmsg(-1));
  }
}

// Calls take(name, sym) for each defined symbol named in `wanted`, .symtab
// first (complete when the binary is not stripped), then .dynsym, until it
// has accepted (returned true for) as many as there are names.
template <typename Take>
void ForEachWantedSymbol(Elf* elf, const std::set<std::string>& wanted, Take take) {
  size_t found = 0;
  for (const Elf64_Word type : {SHT_SYMTAB, SHT_DYNSYM}) {
    Elf_Scn* scn = nullptr;
    while (found < wanted.size() && (scn = elf_nextscn(elf, scn)) != nullptr) {
      GElf_Shdr sh;
      if (gelf_getshdr(scn, &sh) == nullptr || sh.sh_type != type || sh.sh_entsize == 0) continue;
      Elf_Data* data = elf_getdata(scn, nullptr);
      if (data == nullptr) continue;
      const size_t count = sh.sh_size / sh.sh_entsize;
      for (size_t i = 0; i < count && found < wanted.size(); i++) {
        GElf_Sym sym;
        if (gelf_getsym(data, static_cast<int>(i), &sym) == nullptr || sym.st_shndx == SHN_UNDEF) continue;
        const char* name = elf_strptr(elf, sh.sh_link, sym.st_name);
        if (name == nullptr || wanted.count(name) == 0) continue;
        if (take(name, sym)) found++;
      }
    }
  }
}

Napi::Value ResolveFunctions(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string path = StringArg(info, 0, "resolveFunctions()", "binaryPath");
  const std::set<std::string> wanted = WantedNames(info, "resolveFunctions()");
  ElfFile f;
  OpenElf(env, path, "resolveFunctions(" + path + ")", &f);
  Napi::Object out = Napi::Object::New(env);
  ForEachWantedSymbol(f.elf, wanted, [&](const char* name, const GElf_Sym& sym) {
    if (GELF_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_value == 0 || out.Has(name)) return false;
    uint64_t offset;
    if (!FileOffset(f.elf, sym, &offset)) return false;
    out.Set(name, Napi::Number::New(env, static_cast<double>(offset)));
    return true;
  });
  return out;
}

// A symbol's first bytes as the binary holds them (zeros for .bss), at
// most `max`: the V8 constants postmortem tools read (v8dbg_*) and the
// first instructions of a function.
Napi::Value SymbolBytes(Napi::Env env, Elf* elf, const GElf_Sym& sym, size_t max) {
  const size_t n = sym.st_size < max ? static_cast<size_t>(sym.st_size) : max;
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, n);
  std::fill(out.Data(), out.Data() + n, 0);
  Elf_Scn* scn = elf_getscn(elf, sym.st_shndx);
  GElf_Shdr sh;
  if (scn == nullptr || gelf_getshdr(scn, &sh) == nullptr) return env.Null();
  if (sh.sh_type == SHT_NOBITS) return out;
  Elf_Data* data = elf_getdata(scn, nullptr);
  if (data == nullptr || data->d_buf == nullptr) return env.Null();
  const uint64_t at = sym.st_value - sh.sh_addr;
  if (at + n > data->d_size) return env.Null();
  std::copy_n(static_cast<const uint8_t*>(data->d_buf) + at, n, out.Data());
  return out;
}

const char* TypeName(unsigned type) {
  switch (type) {
    case STT_FUNC: return "func";
    case STT_OBJECT: return "object";
    case STT_TLS: return "tls";
    default: return "other";
  }
}

// readSymbols(binaryPath, names, maxBytes) -> { symbols: { name: { value,
// size, type, bytes, offset } }, tls: { memsz, align, vaddr } | null }: defined symbols
// of any type (names not found are left out), and the binary's own
// thread-local block, where its TLS symbols' values are offsets.
Napi::Value ReadSymbols(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string path = StringArg(info, 0, "readSymbols()", "binaryPath");
  const std::set<std::string> wanted = WantedNames(info, "readSymbols()");
  if (info.Length() < 3 || !info[2].IsNumber()) throw MakeUsageError(env, "readSymbols()", EINVAL, "maxBytes must be a number");
  const size_t maxBytes = info[2].As<Napi::Number>().Uint32Value();
  ElfFile f;
  OpenElf(env, path, "readSymbols(" + path + ")", &f);
  Napi::Object result = Napi::Object::New(env);
  result.Set("tls", env.Null());
  size_t phnum = 0;
  if (elf_getphdrnum(f.elf, &phnum) == 0) {
    for (size_t i = 0; i < phnum; i++) {
      GElf_Phdr ph;
      if (gelf_getphdr(f.elf, static_cast<int>(i), &ph) == nullptr || ph.p_type != PT_TLS) continue;
      Napi::Object tls = Napi::Object::New(env);
      tls.Set("memsz", Napi::Number::New(env, static_cast<double>(ph.p_memsz)));
      tls.Set("align", Napi::Number::New(env, static_cast<double>(ph.p_align)));
      tls.Set("vaddr", Napi::Number::New(env, static_cast<double>(ph.p_vaddr)));
      result.Set("tls", tls);
      break;
    }
  }
  Napi::Object out = Napi::Object::New(env);
  ForEachWantedSymbol(f.elf, wanted, [&](const char* name, const GElf_Sym& sym) {
    if (out.Has(name)) return false;
    const unsigned stype = GELF_ST_TYPE(sym.st_info);
    Napi::Object s = Napi::Object::New(env);
    s.Set("value", Napi::Number::New(env, static_cast<double>(sym.st_value)));
    s.Set("size", Napi::Number::New(env, static_cast<double>(sym.st_size)));
    s.Set("type", Napi::String::New(env, TypeName(stype)));
    s.Set("bytes", stype == STT_TLS ? env.Null() : SymbolBytes(env, f.elf, sym, maxBytes));
    uint64_t offset;
    Elf_Scn* in = elf_getscn(f.elf, sym.st_shndx);
    GElf_Shdr insh;
    const bool inFile = stype != STT_TLS && in != nullptr && gelf_getshdr(in, &insh) != nullptr && insh.sh_type != SHT_NOBITS;
    s.Set("offset", Napi::Number::New(env, inFile && FileOffset(f.elf, sym, &offset) ? static_cast<double>(offset) : -1));
    out.Set(name, s);
    return true;
  });
  result.Set("symbols", out);
  return result;
}

}  // namespace

void InitElfSymbols(Napi::Env env, Napi::Object exports) {
  exports.Set("resolveFunctions", Napi::Function::New(env, ResolveFunctions, "resolveFunctions"));
  exports.Set("readSymbols", Napi::Function::New(env, ReadSymbols, "readSymbols"));
}

}  // namespace agentrace
