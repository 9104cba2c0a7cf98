"""`liveness probe CLIP`: what the decoder sees in a clip (or a folder of frames + WAV).

By default the clip is also decoded (every frame, audio at 16 kHz) to report what the engine
would actually get; ``--no-decode`` reads only the container's header.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from liveness.cli import EXIT_OK, load_config


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser("probe", help="show a clip's streams, duration, fps, frames and audio")
    p.add_argument("clip", help="video file, or a folder of frames plus one .wav")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--no-decode", action="store_true", help="read the header only; do not decode frames"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from liveness.media import open_clip, probe

    cfg = load_config(args).media
    info = probe(args.clip, cfg)
    out: dict[str, Any] = {"path": args.clip, "info": info.to_dict()}
    if not args.no_decode:
        clip = open_clip(args.clip, cfg, target_fps=None)
        audio = clip.audio
        rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
        out["decoded"] = {
            "frames": clip.n_frames,
            "frame_size": list(clip.frame_size),
            "first_s": round(float(clip.timestamps[0]), 6),
            "last_s": round(float(clip.timestamps[-1]), 6),
            "audio_rate": clip.audio_rate,
            "audio_seconds": round(clip.audio_seconds, 6),
            "audio_rms_dbfs": round(20 * float(np.log10(max(rms, 1e-10))), 2),
            "sha256": clip.sha256,
        }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        _print_text(out)
    return EXIT_OK


def _print_text(out: dict[str, Any]) -> None:
    i = out["info"]
    print(f"{out['path']}")
    print(f"  container  {i['container']}  ({i['size_bytes']} bytes)")
    print(f"  duration   {i['duration_s']:.3f} s")
    if i["has_video"]:
        rot = f", rotation {i['rotation']} deg" if i["rotation"] else ""
        print(
            f"  video      {i['video_codec']}  {i['width']}x{i['height']}  {i['fps']:g} fps  "
            f"{i['n_frames']} frames declared{rot}"
        )
    else:
        print("  video      (none)")
    if i["has_audio"]:
        print(f"  audio      {i['audio_codec']}  {i['audio_rate']} Hz  {i['audio_channels']} ch")
    else:
        print("  audio      (none)")
    d = out.get("decoded")
    if d:
        w, h = d["frame_size"]
        print(
            f"  decoded    {d['frames']} frames {w}x{h} BGR, "
            f"{d['first_s']:.3f}..{d['last_s']:.3f} s; "
            f"audio {d['audio_seconds']:.3f} s mono at {d['audio_rate']} Hz, "
            f"{d['audio_rms_dbfs']:.1f} dBFS RMS"
        )
        print(f"  sha256     {d['sha256']}")
