#!/usr/bin/env python3
"""Sum an `ncu --csv --print-units base --metrics gpu__time_duration.sum`
report by kernel: launches, total and mean device time, largest first.
Usage: ncu_summary.py REPORT.csv [FRAMES]; with FRAMES (how many generated
frames the profiled launches cover) each kernel's time per frame too."""
import collections
import csv
import re
import sys


def main():
    rows = [r for r in csv.DictReader(line for line in open(sys.argv[1]) if line.startswith('"'))]
    frames = float(sys.argv[2]) if len(sys.argv) > 2 else 0
    acc = collections.defaultdict(lambda: [0, 0.0])
    for r in rows:
        if r.get("Metric Name") != "gpu__time_duration.sum":
            continue
        name = re.sub(r"\(.*", "", r["Kernel Name"]).replace("void ", "")
        key = f'{name} grid{r["Grid Size"]} block{r["Block Size"]}'
        acc[key][0] += 1
        acc[key][1] += float(r["Metric Value"].replace(",", "")) / 1000.0  # ns -> us
    total = sum(v[1] for v in acc.values())
    n = sum(v[0] for v in acc.values())
    print(f"{n} kernels, {total:.1f} us of device time" + (f", {total / frames:.1f} us per frame" if frames else ""))
    print(f"{'kernel':72} {'launches':>8} {'total us':>10} {'mean us':>8}" + (f" {'us/frame':>9}" if frames else ""))
    for k, (c, t) in sorted(acc.items(), key=lambda kv: -kv[1][1]):
        print(f"{k[:72]:72} {c:8d} {t:10.1f} {t / c:8.2f}" + (f" {t / frames:9.1f}" if frames else ""))


if __name__ == "__main__":
    main()
