"""Charging perf samples to what a process was doing (experiments/kernel_time.py), on perf's
own `perf script -F pid,ip,sym` layout."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# four samples of pid 7047 (a worker), one of 99 (someone else): a write (its entry named
# `ksys_write`), a file created (`__x64_sys_openat`), user space, and a page fault outside
# any system call
SCRIPT = """\
   7047 
\tffffffff8165e186 copy_folio_from_iter_atomic
\tffffffff8165e200 generic_perform_write
\tffffffff8165e300 ksys_write
\tffffffff82000100 do_syscall_64
\tffffffff82000200 entry_SYSCALL_64_after_hwframe
\t7f1234567890 __GI___libc_write
\t55d0c0ffee00 [unknown]

   7047 
\tffffffff81612383 recently_deleted
\tffffffff81612400 __ext4_new_inode
\tffffffff81612500 path_openat
\tffffffff81612600 __x64_sys_openat
\tffffffff82000100 do_syscall_64
\t7f1234500000 __GI___libc_open

   7047 
\t55d0c0ffee00 _PyEval_EvalFrameDefault
\t55d0c0ffef00 [unknown]

   7047 
\tffffffff81700000 clear_page_erms
\tffffffff81700100 do_anonymous_page
\tffffffff81700200 exc_page_fault
\tffffffff81700300 asm_exc_page_fault
\t55d0c0ffee00 _PyObject_Malloc

     99 
\tffffffff8165e300 ksys_write
"""


@pytest.fixture
def kt(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(ROOT))  # experiments/ is a package at the checkout's root
    from experiments import kernel_time
    return kernel_time


def test_samples_are_charged_to_what_the_process_was_doing(kt) -> None:
    counts = kt.parse(SCRIPT, [7047])
    assert counts == {"write (files, staged outputs)": 1, "open and create files": 1,
                      kt.USER: 1, kt.PAGE_FAULTS: 1}
    assert kt.parse(SCRIPT, [99]) == {"write (files, staged outputs)": 1}
    assert kt.parse(SCRIPT, [1]) == {}
    # 999 samples a second: 4 samples over 2 compiles are 2.0 ms each
    assert sum(kt.per_unit_ms(counts, 2, freq=1000).values()) == 2.0
    assert kt.per_unit_ms(counts, 0) == {}


def test_a_kernel_sample_without_a_named_syscall(kt) -> None:
    assert kt.kind(["entry_SYSCALL_64", "x"], [True, False]) == kt.OTHER_SYSCALLS
    assert kt.kind(["handle_softirqs", "x"], [True, False]) == kt.OTHER_KERNEL
    assert kt.kind(["__x64_sys_fancy_new_call"], [True]) == kt.OTHER_SYSCALLS
    assert kt.kind(["__do_sys_brk"], [True]) == "memory (mmap, munmap, brk)"
