"""What each glibc malloc arena of a running process holds: in use, free, and free in whole
pages (what malloc_trim could give back), with the threads attached to each arena.

usage: gdb -p PID -batch -x tools/heap_arenas.py

Read-only: it reads the arenas' memory and never calls into the process (calling functions in
an attached process fails on some VMs, and would run the allocator under the process's feet).
Needs glibc's debug symbols (Debian: libc6-dbg) for `main_arena` and the structures below.
A chunk counts as in use when the next chunk's PREV_INUSE bit says so, so blocks parked in
tcache or the fast bins count as in use, as glibc itself counts them. The main arena (sbrk heap)
is listed with its size only."""

import struct

import gdb

HEAP_MAX = 64 << 20  # HEAP_MAX_SIZE on 64-bit: every non-main heap is aligned to it
PAGE = 4096


def heaps_of(arena_addr, top):
    """The heaps of a non-main arena, newest first: (address, size in use)."""
    heaps = []
    h = top & ~(HEAP_MAX - 1)
    while True:
        info = gdb.parse_and_eval(f"*(heap_info*){h}")
        heaps.append((h, int(info["size"])))
        prev = int(info["prev"])
        if prev == 0:
            return heaps
        h = prev


def walk(arena_addr, top, heaps, state_size, info_size):
    """Sums the chunks of `heaps`: (used, free, free in whole pages, blocks in use)."""
    inferior = gdb.selected_inferior()
    used = free = free_pages = blocks = 0
    for h, size in heaps:
        # The first heap holds the arena's own state after its heap_info.
        first = arena_addr + state_size if h == arena_addr & ~(HEAP_MAX - 1) else h + info_size
        p = (first + 15) & ~15
        end = h + size
        mem = bytes(inferior.read_memory(h, size))
        while p + 16 <= end:
            chunk = struct.unpack_from("<Q", mem, p - h + 8)[0] & ~7
            if p == top or chunk == 0:
                free += end - p
                free_pages += max(0, (end & ~(PAGE - 1)) - ((p + 32 + PAGE - 1) & ~(PAGE - 1)))
                break
            nxt = p + chunk
            if nxt + 16 > end:
                break
            if struct.unpack_from("<Q", mem, nxt - h + 8)[0] & 1:
                used += chunk
                blocks += 1
            else:
                free += chunk
                lo = (p + 32 + PAGE - 1) & ~(PAGE - 1)
                hi = nxt & ~(PAGE - 1)
                free_pages += max(0, hi - lo)
            p = nxt
    return used, free, free_pages, blocks


def threads_by_arena():
    """{arena address: [thread names]} from each thread's `thread_arena`."""
    found = {}
    for thread in gdb.selected_inferior().threads():
        thread.switch()
        try:
            arena = int(gdb.parse_and_eval("(unsigned long)thread_arena"))
        except gdb.error:
            continue
        found.setdefault(arena, []).append(thread.name or str(thread.ptid[1]))
    return found


def main():
    state_size = int(gdb.parse_and_eval("sizeof(struct malloc_state)"))
    info_size = int(gdb.parse_and_eval("sizeof(heap_info)"))
    owners = threads_by_arena()
    arena = gdb.parse_and_eval("&main_arena")
    start = int(arena)
    mib = 1 << 20
    while True:
        state = arena.dereference()
        addr = int(arena)
        system = int(state["system_mem"])
        names = ", ".join(owners.get(addr, [])) or "-"
        if addr == start:
            print(f"main arena: {system / mib:.1f} MiB from the system; threads: {names}")
        else:
            top = int(state["top"])
            heaps = heaps_of(addr, top)
            used, free, free_pages, blocks = walk(addr, top, heaps, state_size, info_size)
            print(
                f"arena {addr:#x}: {system / mib:.1f} MiB from the system, "
                f"{used / mib:.1f} MiB in use ({blocks} blocks), {free / mib:.1f} MiB free, "
                f"{free_pages / mib:.1f} MiB of it in whole pages; {len(heaps)} heap(s); "
                f"threads: {names}"
            )
        arena = state["next"]
        if int(arena) == start:
            break


main()
