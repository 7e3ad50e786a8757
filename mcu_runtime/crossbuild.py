"""Cross-build C sources for one MCU profile and measure the ELF.

Compiles the sources with the profile's GCC, links them with the family's startup/platform layer
(``mcu_runtime/startup/``) and its stack-first linker script whose RAM region is the profile's
RAM (so a program that does not fit fails *at link time*), then reads the result back: section
sizes (``size -A``), ld's memory-usage table, per-function stack frames (``-fstack-usage``) and
symbol sizes (``nm -S``).  The host profile builds a native executable instead.

The C side of the platform layer is ``mcu_runtime/startup/common/plat.h``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from msfopt.mcu import MCUProfile, get_profile

from .toolchain import BuildError, binutil, require_tools, run_tool

__all__ = ["BuildResult", "build", "plat_include_dir", "startup_dir", "symbol_size", "symbols"]


def startup_dir() -> Path:
    """The per-family startup code, linker scripts and platform layer (``plat.h``)."""
    return Path(__file__).resolve().parent / "startup"


def plat_include_dir() -> Path:
    """Directory holding ``plat.h`` (add it to include_dirs of generated code)."""
    return startup_dir() / "common"


@dataclass
class BuildResult:
    target: str
    elf: Path
    text: int  # code + read-only data in flash (incl. vectors)
    data: int  # initialised RAM data (.data; on xtensa also .rodata, copied to DRAM)
    bss: int  # zero-initialised RAM (.bss), excluding the stack
    stack_reserved: int  # the .stack region at the bottom of RAM
    ram_used_static: int  # data + bss + stack_reserved
    flash_used: int  # text + data (load image)
    ram_size: int  # the RAM budget the link enforced (0 = not enforced, host)
    commands: list[list[str]]
    sections: dict[str, int]
    memory_usage: dict[str, tuple[int, int]]  # region -> (used, size) from ld
    stack_frames: dict[str, int]  # function -> frame bytes (-fstack-usage)
    sanitize: bool
    seconds: float
    link_output: str = ""


def _defines_args(defines) -> list[str]:
    if not defines:
        return []
    if isinstance(defines, Mapping):
        items = defines.items()
    else:
        items = [(d, None) if isinstance(d, str) else tuple(d) for d in defines]
    args = []
    for k, v in items:
        k = str(k).removeprefix("-D")
        args.append(f"-D{k}" if v is None else f"-D{k}={v}")
    return args


def _parse_size_A(text: str) -> dict[str, int]:
    secs: dict[str, int] = {}
    for ln in text.splitlines():
        parts = ln.split()
        if len(parts) >= 3 and parts[0].startswith(".") and parts[1].isdigit():
            secs[parts[0]] = secs.get(parts[0], 0) + int(parts[1])
    return secs


_NON_ALLOC = (".comment", ".debug", ".ARM.attributes", ".riscv.attributes", ".xtensa.info",
              ".xt.prop", ".xt.lit", ".stab", ".note.gnu", ".symtab", ".strtab", ".shstrtab")


def _parse_memusage(text: str) -> dict[str, tuple[int, int]]:
    units = {"B": 1, "KB": 1024, "MB": 1024 * 1024, "GB": 1024**3}
    out = {}
    for m in re.finditer(r"^\s*(\w+):\s+(\d+)\s*(B|KB|MB|GB)\s+(\d+)\s*(B|KB|MB|GB)", text, re.M):
        out[m.group(1)] = (int(m.group(2)) * units[m.group(3)], int(m.group(4)) * units[m.group(5)])
    return out


def _parse_su(obj_dir: Path) -> dict[str, int]:
    frames: dict[str, int] = {}
    for su in obj_dir.glob("*.su"):
        for ln in su.read_text(errors="replace").splitlines():
            parts = ln.split("\t")
            if len(parts) >= 2 and parts[1].strip().isdigit():
                fn = parts[0].rsplit(":", 1)[-1]
                frames[fn] = max(frames.get(fn, 0), int(parts[1]))
    return frames


def build(
    target: str | MCUProfile,
    sources: Iterable[Path | str],
    include_dirs: Iterable[Path | str] = (),
    out_dir: Path | str = "build",
    defines: Mapping[str, object] | Sequence[str] | None = None,
    opt: str = "-O2",
    *,
    stack_size: int | None = None,
    sanitize: bool = False,
    extra_cflags: Sequence[str] = (),
    extra_ldflags: Sequence[str] = (),
    name: str = "prog",
) -> BuildResult:
    """Compile ``sources`` for ``target`` (a target or board name) and link them with the
    target's startup/platform layer. The link enforces the profile's RAM and flash sizes.

    ``defines``: mapping ``{"N": 3}`` or list ``["N=3", "FLAG"]``. ``stack_size``
    overrides the profile's reserved stack. ``sanitize`` (host only) adds
    ``-fsanitize=address,undefined``. Raises ``BuildError``/``ToolchainMissing``."""
    t0 = time.perf_counter()
    p = get_profile(target)
    fam = p.family_spec
    assert fam is not None
    require_tools(p, run=False)
    out = Path(out_dir).resolve()
    obj_dir = out / f"obj-{name}"
    if obj_dir.exists():
        shutil.rmtree(obj_dir)
    obj_dir.mkdir(parents=True)
    srcs = [Path(s).resolve() for s in sources]
    for s in srcs:
        if not s.is_file():
            raise BuildError(f"source not found: {s}")
    tdir = startup_dir()
    plat_srcs = [tdir / s for s in fam.startup]
    incs = [f"-I{plat_include_dir()}"] + [f"-I{Path(d).resolve()}" for d in include_dirs]
    dargs = _defines_args(defines)
    commands: list[list[str]] = []
    elf = out / (f"{name}.elf" if not p.is_host else name)
    if elf.exists():
        elf.unlink()

    if p.is_host:
        san = (["-fsanitize=address,undefined", "-fno-omit-frame-pointer",
                "-fno-sanitize-recover=undefined"] if sanitize else [])
        cmd = [p.gcc, opt, *fam.common_cflags, *p.cflags, *san, *extra_cflags, *incs, *dargs,
               *(str(s) for s in srcs), *(str(s) for s in plat_srcs), *p.ldflags,
               *fam.common_ldflags, *extra_ldflags, *san, "-o", str(elf), *fam.libs]
        link_out = run_tool(cmd, commands)
    else:
        if sanitize:
            raise BuildError(f"{p.name}: sanitizers are only available on the host target")
        cflags = [opt, *fam.common_cflags, *p.cflags, *extra_cflags, *incs, *dargs]
        objs = []
        for i, s in enumerate([*srcs, *plat_srcs]):
            o = obj_dir / f"{i:02d}_{s.stem}.o"
            run_tool([p.gcc, *cflags, "-c", str(s), "-o", str(o)], commands)
            objs.append(str(o))
        syms = {
            "__flash_org": p.flash_origin,
            "__flash_len": p.flash_size,
            "__ram_org": p.ram_origin,
            "__ram_len": p.ram_size,
            "__stack_size": stack_size if stack_size is not None else p.stack_size,
            **p.defsym,
        }
        ld = [p.gcc, *p.ldflags, *fam.common_ldflags, "-T", str(tdir / fam.linker_script),
              *(f"-Wl,--defsym={k}={int(v):#x}" for k, v in syms.items()),
              f"-Wl,-Map={out / (name + '.map')}", *extra_ldflags,
              *objs, *fam.libs, "-o", str(elf)]
        link_out = run_tool(ld, commands)

    size_txt = run_tool([binutil(p, "size"), "-A", str(elf)], commands)
    secs = _parse_size_A(size_txt)
    alloc = {k: v for k, v in secs.items() if not k.startswith(_NON_ALLOC)}
    if p.is_host:
        berk = run_tool([binutil(p, "size"), str(elf)], commands).splitlines()[-1].split()
        text, data, bss = int(berk[0]), int(berk[1]), int(berk[2])
        stack = 0
    else:
        stack = alloc.get(".stack", 0)
        data = alloc.get(".data", 0)
        bss = alloc.get(".bss", 0)
        text = sum(v for k, v in alloc.items() if k not in (".stack", ".data", ".bss"))
    return BuildResult(
        target=p.name,
        elf=elf,
        text=text,
        data=data,
        bss=bss,
        stack_reserved=stack,
        ram_used_static=data + bss + stack,
        flash_used=text + data,
        ram_size=p.ram_size,
        commands=commands,
        sections=alloc,
        memory_usage=_parse_memusage(link_out),
        stack_frames=_parse_su(obj_dir) if not p.is_host else {},
        sanitize=sanitize,
        seconds=time.perf_counter() - t0,
        link_output=link_out,
    )


def symbols(p: MCUProfile, elf: Path) -> dict[str, tuple[int, int]]:
    """Defined symbols of ``elf``: name -> (address, size) from ``nm -S`` (ARM: Thumb bit
    cleared; the first definition of a repeated name)."""
    cp = subprocess.run([binutil(p, "nm"), "-S", "--defined-only", str(elf)],
                        capture_output=True, text=True, timeout=60)
    syms: dict[str, tuple[int, int]] = {}
    for ln in cp.stdout.splitlines():
        parts = ln.split()
        if len(parts) == 4:
            addr, size, name = int(parts[0], 16), int(parts[1], 16), parts[3]
        elif len(parts) == 3:
            addr, size, name = int(parts[0], 16), 0, parts[2]
        else:
            continue
        if p.family == "arm":
            addr &= ~1  # Thumb bit
        syms.setdefault(name, (addr, size))
    return syms


def symbol_size(target: str | MCUProfile, elf: Path, name: str) -> int | None:
    """Size in bytes of the object ``name`` in ``elf`` as ``nm -S`` reports it (local statics
    included; GCC may suffix a local's name with ``.N``), or None when it is not in the ELF."""
    syms = symbols(get_profile(target), Path(elf))
    if name in syms:
        return syms[name][1]
    hits = [v for k, v in syms.items() if k.split(".")[0] == name]
    return hits[0][1] if len(hits) == 1 else None
