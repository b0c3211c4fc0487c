"""The rows ``make bench`` prints: each figure beside its baseline, the ratio and the target."""

from __future__ import annotations

from typing import Any

Row = tuple[str, str, str, str, str]


#: The rows of the side-by-side table: (key, label, unit).
SIDE_BY_SIDE = (
    ("ingest_s", "ingest new content", "s"),
    ("readd_s", "re-ingest the same path", "s"),
    ("newpath_s", "ingest the same content at a new path", "s"),
    ("finetune_s", "ingest a 5% fine-tune", "s"),
    ("finetune_new_bytes", "fine-tune new bytes", ""),
    ("stored_bytes", "stored bytes, first version", ""),
    ("restore_s", "restore to a file", "s"),
    ("restore_cold_s", "restore to a file, cold page cache", "s"),
    ("bf16_stored_bytes", "stored bytes, bf16 file", ""),
    ("folder_s", "ingest a model folder", "s"),
    ("folder_stored_bytes", "stored bytes, model folder", ""),
    ("peak_rss_mib", "peak RSS, largest of these runs", "MiB"),
)


def _shown(figures: dict[str, Any], key: str, unit: str) -> str:
    """A median, with its min-max over the rounds when there were several."""
    value = figures[key]
    low, high = figures.get("spread", {}).get(key, (value, value))
    if unit == "s":
        return f"{value:.3f}s" if low == high else f"{value:.3f}s [{low:.3f}-{high:.3f}]"
    if low == high:
        return f"{value} {unit}".rstrip()
    return f"{value} [{low}-{high}] {unit}".rstrip()


def report_peers(r: dict[str, Any]) -> list[Row]:
    """scribestore against the best peer present, row by row (lower is better):
    medians over the rounds, with min-max in brackets."""
    peers = {k: v for k, v in r.items() if k != "scribestore" and "absent" not in v}
    rows = []
    for key, label, unit in SIDE_BY_SIDE:
        ours = r["scribestore"]
        best = min(peers.items(), key=lambda kv: kv[1][key]) if peers else None
        theirs = "n/a" if best is None else f"{_shown(best[1], key, unit)} {best[0]}"
        rows.append(
            (
                f"best peer: {label}",
                _shown(ours, key, unit),
                theirs,
                ratio(ours[key], best[1][key]) if best else "",
                "" if unit == "MiB" else "<= 1.0x",
            )
        )
    for name, figures in r.items():
        if "absent" in figures:
            rows.append((f"  {name}", "absent", "", "", ""))
        elif name != "scribestore":
            verifies = "verifies" if figures["restore_verifies"] else "does not verify"
            rows.append((f"  {name} restore {verifies} hashes", "", "", "", ""))
            if "startup_s" in figures:
                rows.append(
                    (
                        f"  {name} start-up, in each of its times",
                        f"{figures['startup_s']:.3f}s",
                        "",
                        "",
                        "",
                    )
                )
    return rows


def ratio(a: float, b: float) -> str:
    """``a / b`` as ``1.23x``, or ``n/a`` when ``b`` is zero."""
    return f"{a / b:.2f}x" if b else "n/a"


def report_large(r: dict[str, Any]) -> list[Row]:
    """Large-file rows: log+save, re-log and load against their floors, storage and dedup."""
    rows = []

    def s(key: str) -> float:
        return float(r[key]["seconds"]) if key in r else float("nan")

    def t(key: str) -> str:
        runs = r[key].get("all_seconds", []) if key in r else []
        spread = f" [{min(runs):.3f}-{max(runs):.3f}]" if len(runs) > 1 else ""
        return f"{s(key):.3f}s{spread}"

    rows.append(
        (
            "log+save (file handler) vs cp+fsync, then b3",
            t("scribe_log_save"),
            t("cp_fsync_b3"),
            ratio(s("scribe_log_save"), s("cp_fsync_b3")),
            "<= 1.0x",
        )
    )
    rows.append(
        (
            "log+save (file handler) vs cp+fsync",
            t("scribe_log_save"),
            t("cp_fsync"),
            ratio(s("scribe_log_save"), s("cp_fsync")),
            "",
        )
    )
    if "lazy_log_save" in r:
        rows.append(
            (
                "log+save vs lazyscribe (pickle)",
                t("scribe_log_save"),
                t("lazy_log_save"),
                ratio(s("scribe_log_save"), s("lazy_log_save")),
                "",
            )
        )
    rows.append(
        (
            "  ingest (file bytes / log+save time)",
            f"{r['file_bytes'] / s('scribe_log_save') / 1e6:.0f} MB/s",
            "",
            "",
            ">= 500 MB/s",
        )
    )
    rows.append(
        (
            "identical re-log vs cp+fsync",
            t("scribe_relog"),
            t("cp_fsync"),
            ratio(s("scribe_relog"), s("cp_fsync")),
            "<= 20 ms",
        )
    )
    rows.append(
        (
            "identical re-log vs cp (no fsync)",
            t("scribe_relog"),
            t("cp_plain"),
            ratio(s("scribe_relog"), s("cp_plain")),
            "",
        )
    )
    if "lazy_relog" in r:
        rows.append(
            (
                "identical re-log vs lazyscribe",
                t("scribe_relog"),
                t("lazy_relog"),
                ratio(s("scribe_relog"), s("lazy_relog")),
                "",
            )
        )
    rows.append(
        (
            "  new bytes: scribestore / lazyscribe",
            str(r["scribe_relog"]["new_bytes"]),
            str(r["lazy_relog"]["new_bytes"]) if "lazy_relog" in r else "n/a",
            "",
            "",
        )
    )
    rows.append(
        (
            "verified load vs read+blake3",
            t("scribe_load"),
            t("read_and_hash"),
            ratio(s("scribe_load"), s("read_and_hash")),
            "<= 1.2x",
        )
    )
    if "lazy_load" in r:
        rows.append(
            (
                "verified load vs lazyscribe load",
                t("scribe_load"),
                t("lazy_load"),
                ratio(s("scribe_load"), s("lazy_load")),
                "",
            )
        )
    rows.append(
        (
            "same content at a new path vs b3, all cores",
            t("scribe_new_path"),
            t("b3_file"),
            ratio(s("scribe_new_path"), s("b3_file")),
            "<= 1.1x",
        )
    )
    stored = r["scribe_log_save"]["stored_bytes"] / r["file_bytes"]
    rows.append(("stored / raw (float32, whole store)", f"{stored:.3f}", "", "", "<= 0.90"))
    d = r["dedup"]
    if "bf16_stored_bytes" in d:
        bf16 = d["bf16_stored_bytes"] / d["file_bytes"]
        rows.append(("stored / raw (bf16, whole store)", f"{bf16:.3f}", "", "", "<= 0.72"))
    rows.append(
        (
            "fine-tune (5%) new bytes / changed bytes",
            str(d["finetune_new_bytes"]),
            str(d["changed_bytes"]),
            ratio(d["finetune_new_bytes"], d["changed_bytes"]),
            "<= 1.2x",
        )
    )
    rows.append(
        (
            "1 inserted byte: new bytes / file",
            str(d["insert_new_bytes"]),
            str(d["file_bytes"]),
            f"{100 * d['insert_new_bytes'] / d['file_bytes']:.3f}%",
            "<= 1%",
        )
    )
    for key in ("scribe_log_save", "scribe_load", "lazy_log_save", "lazy_load"):
        if key in r:
            rows.append(
                (
                    f"  peak RSS growth: {key}",
                    f"{r[key]['peak_rss_growth_mib']} MiB",
                    "",
                    "",
                    "< 200 MiB" if key.startswith("scribe") else "",
                )
            )
    return rows


def report_scale(scaled: dict[str, Any], repacked: dict[str, Any]) -> list[Row]:
    rows = []
    for size, r in scaled.items():
        for op, label in (("small_save", "small save"), ("relog", "re-log"), ("load", "load")):
            rows.append(
                (
                    f"{size} store ({r['packs']} packs): {label}",
                    f"{r[op + '_s'] * 1000:.1f} ms",
                    f"{r[op + '_fresh_s'] * 1000:.1f} ms",
                    ratio(r[op + "_s"], r[op + "_fresh_s"]),
                    "<= 1.5x",
                )
            )
            rows.append((f"  requests: {label}", str(r[op + "_requests"]), "", "", "bounded"))
        rows.append(
            (
                f"{size} store: open + one load RSS",
                f"{r['open_and_load_rss_mib']:.0f} MiB",
                "",
                "",
                "< 100 MiB",
            )
        )
    rows.append(
        (
            "gc after dropping half of 8 fine-tunes",
            f"{repacked['stored_after_gc']:,} B",
            f"live {repacked['live_bytes']:,} B",
            f"{repacked['after_over_live']:.2f}x",
            "",
        )
    )
    return rows
