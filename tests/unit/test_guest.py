"""The QEMU test guest's pieces that need no QEMU: initramfs, modules, kernel
extraction, the .desc keys that send an item there, the verdict handling."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import zstandard

from zdtm.harness import guest
from zdtm.harness.desc import DescError, load
from zdtm.harness.flavors import FLAVORS
from zdtm.harness.runner import RunConfig, StepFailed


def parse_newc(data: bytes) -> list[tuple[str, int, bytes, int]]:
    """(name, mode, data, rdev) of each entry of a cpio newc archive, trailer excluded."""
    out, pos = [], 0
    while True:
        assert data[pos:pos + 6] == b"070701", f"bad magic at {pos}"
        f = [int(data[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, rmaj, rmin, namesize = f[1], f[6], f[9], f[10], f[11]
        pos += 110
        name = data[pos:pos + namesize - 1].decode()
        assert data[pos + namesize - 1] == 0
        pos += namesize + (-(110 + namesize) % 4)
        body = data[pos:pos + size]
        pos += size + (-size % 4)
        if name == "TRAILER!!!":
            assert pos == len(data)
            return out
        out.append((name, mode, body, os.makedev(rmaj, rmin)))


def test_cpio_newc_round_trip():
    entries = [
        ("bin", stat.S_IFDIR | 0o755, b"", 0),
        ("dev/console", stat.S_IFCHR | 0o600, b"", os.makedev(5, 1)),
        ("init", stat.S_IFREG | 0o755, b"#!/bin/sh\necho odd length\n", 0),
        ("x" * 7, stat.S_IFREG | 0o644, bytes(range(256)) * 3 + b"z", 0),
    ]
    assert parse_newc(guest.cpio_newc(entries)) == entries


def _ko(depends: str) -> bytes:
    return b"\x7fELF junk\0license=GPL\0depends=" + depends.encode() + b"\0name=x\0"


def test_module_order_puts_dependencies_first():
    mods = {"netfs.ko": _ko(""), "9pnet.ko": _ko(""), "9pnet_virtio.ko": _ko("9pnet"),
            "9p.ko": _ko("netfs,9pnet"), "unused.ko": _ko("")}
    assert guest.module_order(mods, ("9pnet_virtio", "9p")) == ["9pnet.ko", "9pnet_virtio.ko", "netfs.ko", "9p.ko"]
    assert guest.module_depends(_ko("")) == []


def test_module_order_names_a_missing_dependency_and_a_loop():
    with pytest.raises(guest.GuestError, match=r"module netfs \(needed by 9p\) is not in the package"):
        guest.module_order({"9p.ko": _ko("netfs")}, ("9p",))
    with pytest.raises(guest.GuestError, match="loop: a -> b -> a"):
        guest.module_order({"a.ko": _ko("b"), "b.ko": _ko("a")}, ("a",))


def test_vmlinux_is_the_zstd_frame_holding_an_elf():
    elf = b"\x7fELF" + os.urandom(3000)
    bogus = guest.ZSTD_MAGIC + b"not a frame"
    other = zstandard.ZstdCompressor().compress(b"not an ELF")
    vmlinuz = b"MZ setup code " + bogus + other + zstandard.ZstdCompressor().compress(elf) + b"trailing data"
    assert guest.vmlinux_from_vmlinuz(vmlinuz) == elf
    with pytest.raises(guest.GuestError, match="no zstd-compressed ELF"):
        guest.vmlinux_from_vmlinuz(b"MZ" + other)


def test_package_members_taken():
    assert guest._wanted_member("./boot/vmlinuz-6.12.1+deb12-amd64")
    assert guest._wanted_member("./boot/config-6.12.1+deb12-amd64")
    assert guest._wanted_member("./lib/modules/6.12.1+deb12-amd64/kernel/fs/9p/9p.ko.xz")
    assert not guest._wanted_member("./lib/modules/6.12.1+deb12-amd64/kernel/fs/ext4/ext4.ko.xz")
    assert not guest._wanted_member("./boot/System.map-6.12.1+deb12-amd64")


def test_kernel_config_check_names_what_is_missing():
    guest._check_config("\n".join(guest.KERNEL_CONFIG_NEEDS).encode())
    with pytest.raises(guest.GuestError, match="CONFIG_RTC_INTF_DEV=y"):
        guest._check_config(b"CONFIG_RTC_DRV_CMOS=y\nCONFIG_PVH=y\nCONFIG_VIRTIO_PCI=y\n"
                            b"# CONFIG_RTC_INTF_DEV is not set\n")


def _scenario(tmp_path: Path, desc: str) -> Path:
    static = tmp_path / "zdtm" / "static"
    static.mkdir(parents=True)
    (static / "x.c").write_text("int main(void) { return 0; }\n")
    (static / "x.desc").write_text(desc)
    return static / "x.c"


def test_desc_device_and_plugins(tmp_path):
    sc = load(_scenario(tmp_path, "{'device': '/dev/rtc /dev/null', 'plugins': 'criu-rtc'}"))
    assert sc.devices == ("/dev/rtc", "/dev/null")
    libdir = f"--libdir={tmp_path.resolve() / 'plugins' / 'criu-rtc'}"
    assert sc.dump_opts() == [libdir] and sc.restore_opts() == [libdir]
    assert guest.missing_devices(("/dev/null", "/dev/no-such-device")) == ["/dev/no-such-device"]


@pytest.mark.parametrize("plugins", ["'../evil'", "'a b'", "['a', 'b']"])
def test_desc_plugins_refused(tmp_path, plugins):
    with pytest.raises(DescError, match="'plugins' names one directory"):
        load(_scenario(tmp_path, f"{{'plugins': {plugins}}}"))


def _guest_run(tmp_path: Path, verdict: dict | None) -> guest.GuestRun:
    wd = tmp_path / "work" / "h" / "x"
    wd.mkdir(parents=True)
    (wd.parent / "x.console.log").write_text("boot\nthe last words\n")
    if verdict is not None:
        (wd / guest.VERDICT_FILE).write_text(json.dumps(verdict))
    sc = load(_scenario(tmp_path, "{}"))
    return guest.GuestRun(RunConfig(scenario=sc, flavor=FLAVORS["h"], workdir=wd, env={}))


def test_verdict_pass_and_fail(tmp_path):
    run = _guest_run(tmp_path / "a", {"ok": True, "steps_done": ["start", "dump", "restore"]})
    run._take_verdict(0)
    assert run.steps_done == ["guest:start", "guest:dump", "guest:restore"]
    run = _guest_run(tmp_path / "b", {"ok": False, "step": "restore", "message": "refcr restore exited with 1",
                                       "details": ["d1"], "steps_done": ["dump"]})
    with pytest.raises(StepFailed) as e:
        run._take_verdict(0)
    assert (e.value.step, e.value.message, e.value.details) == ("guest:restore", "refcr restore exited with 1", ["d1"])


def test_no_verdict_shows_the_console(tmp_path):
    run = _guest_run(tmp_path, None)
    with pytest.raises(StepFailed, match=r"no verdict from the guest \(qemu status 1") as e:
        run._take_verdict(1)
    assert e.value.step == "guest" and "the last words" in e.value.details


def test_unavailable_names_what_is_missing(monkeypatch):
    monkeypatch.setattr(guest.shutil, "which", lambda tool: None if tool == guest.QEMU else f"/usr/bin/{tool}")
    assert guest.unavailable().startswith(f"{guest.QEMU} not found")
    monkeypatch.setattr(guest.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setattr(guest, "BUSYBOX", Path("/no/such/busybox"))
    assert "busybox-static" in guest.unavailable()
