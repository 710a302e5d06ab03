#include "elf_symbols.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

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

Napi::Value ResolveFunctions(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string path = StringArg(info, 0, "resolveFunctions()", "binaryPath");
  if (info.Length() < 2 || !info[1].IsArray()) {
    throw MakeUsageError(env, "resolveFunctions()", EINVAL, "names must be an array of strings");
  }
  Napi::Array names = info[1].As<Napi::Array>();
  std::set<std::string> wanted;
  for (uint32_t i = 0; i < names.Length(); i++) wanted.insert(names.Get(i).ToString().Utf8Value());
  const std::string what = "resolveFunctions(" + path + ")";

  if (elf_version(EV_CURRENT) == EV_NONE) throw MakeBpfError(env, what, EINVAL, "libelf is too old");
  ElfFile f;
  f.fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) throw MakeBpfError(env, what, errno, "cannot open the binary");
  f.elf = elf_begin(f.fd, ELF_C_READ_MMAP, nullptr);
  if (f.elf == nullptr || elf_kind(f.elf) != ELF_K_ELF) {
    throw MakeBpfError(env, what, ENOEXEC, std::string("not an ELF file: ") + elf_errmsg(-1));
  }
  Napi::Object out = Napi::Object::New(env);
  size_t found = 0;
  // .symtab first (complete when the binary is not stripped), then .dynsym.
  for (const Elf64_Word type : {SHT_SYMTAB, SHT_DYNSYM}) {
    Elf_Scn* scn = nullptr;
    while (found < wanted.size() && (scn = elf_nextscn(f.elf, scn)) != nullptr) {
      GElf_Shdr sh;
      if (gelf_getshdr(scn, &sh) == nullptr || sh.sh_type != type || sh.sh_entsize == 0) continue;
      Elf_Data* data = elf_getdata(scn, nullptr);
      if (data == nullptr) continue;
      const size_t count = sh.sh_size / sh.sh_entsize;
      for (size_t i = 0; i < count && found < wanted.size(); i++) {
        GElf_Sym sym;
        if (gelf_getsym(data, static_cast<int>(i), &sym) == nullptr) continue;
        if (GELF_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_shndx == SHN_UNDEF || sym.st_value == 0) continue;
        const char* name = elf_strptr(f.elf, sh.sh_link, sym.st_name);
        if (name == nullptr || wanted.count(name) == 0 || out.Has(name)) continue;
        uint64_t offset;
        if (!FileOffset(f.elf, sym, &offset)) continue;
        out.Set(name, Napi::Number::New(env, static_cast<double>(offset)));
        found++;
      }
    }
  }
  return out;
}

}  // namespace

void InitElfSymbols(Napi::Env env, Napi::Object exports) {
  exports.Set("resolveFunctions", Napi::Function::New(env, ResolveFunctions, "resolveFunctions"));
}

}  // namespace agentrace
