"""Reading callgrind dumps (for tools/callgrind_requests.py and tools/callgrind_floor.py)."""
import glob, re

ALLOC = {"malloc", "calloc", "realloc", "posix_memalign", "aligned_alloc", "memalign"}


def allocations(txt):
    """Calls into the allocator's entry points: the sum of `calls=` under a `cfn=` naming one."""
    names, callee, n = {}, None, 0
    for line in txt.splitlines():
        m = re.match(r"c?fn=\((\d+)\)(?: (.*))?$", line)
        if m:
            if m.group(2): names[m.group(1)] = m.group(2)
            if line.startswith("cfn="): callee = names.get(m.group(1))
            continue
        if line.startswith("calls=") and callee in ALLOC:
            n += int(line[6:].split()[0])
    return n


def report(out, counts, width=12):
    """Prints instructions and allocations per request of each dump in `out` named in `counts`
    (dump name -> requests in it)."""
    for f in sorted(glob.glob(out + "/cg.out*")):
        txt = open(f, errors="replace").read()
        m = re.search(r"^desc: Trigger: (?:Client Request: |dump )(\S+)", txt, re.M)
        t = re.search(r"^(?:summary|totals): (\d+)", txt, re.M)
        if m and t and m.group(1) in counts:
            k = counts[m.group(1)]
            print(f"{m.group(1):{width}s} {int(t.group(1)) / k:>12,.0f} instructions/request "
                  f"{allocations(txt) / k:>8,.1f} allocations/request")
