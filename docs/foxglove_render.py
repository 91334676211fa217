"""Draws what the independent Foxglove client received (docs/foxglove_client/snapshot.mjs's JSON) as
one PNG, as Foxglove's 3D and image panels would: the map, the scan, the pose with its covariance,
the planned and the driven path, the people, and the camera view (faces blurred by the robot).
Nothing here talks to the robot: it only reads the client's JSON (Pillow draws).

    python docs/foxglove_render.py SNAPSHOT.json OUT.png
"""
from __future__ import annotations

import base64
import io
import json
import math
import sys

from PIL import Image, ImageDraw

SCALE = 2  # pixels per map cell


def quat_yaw(q: dict) -> float:
    return math.atan2(2.0 * (q['w'] * q['z'] + q['x'] * q['y']), 1.0 - 2.0 * (q['y'] ** 2 + q['z'] ** 2))


class Frames:
    """2-D transforms from the client's /tf and /tf_static (child -> transform)."""

    def __init__(self, transforms: dict) -> None:
        self.parent = {child: (t['header']['frame_id'], t['transform']) for child, t in transforms.items()}

    def to_map(self, frame: str) -> tuple[float, float, float] | None:
        x, y, th = 0.0, 0.0, 0.0
        hops = 0
        while frame != 'map':
            if frame not in self.parent or hops > 10:
                return None
            parent, t = self.parent[frame]
            tx, ty, tth = t['translation']['x'], t['translation']['y'], quat_yaw(t['rotation'])
            x, y = tx + math.cos(tth) * x - math.sin(tth) * y, ty + math.sin(tth) * x + math.cos(tth) * y
            th += tth
            frame, hops = parent, hops + 1
        return x, y, th


def apply(pose: tuple[float, float, float], x: float, y: float) -> tuple[float, float]:
    px, py, th = pose
    return px + math.cos(th) * x - math.sin(th) * y, py + math.sin(th) * x + math.cos(th) * y


def main(snapshot: str, out: str) -> None:
    data = json.load(open(snapshot))
    last, frames = data['last'], Frames(data.get('transforms', {}))
    grid = last['/map']['message']
    info = grid['info']
    w, h, res = info['width'], info['height'], info['resolution']
    ox, oy = info['origin']['position']['x'], info['origin']['position']['y']
    cells = base64.b64decode(grid['data']['base64']) if isinstance(grid['data'], dict) else bytes(
        v & 0xFF for v in grid['data'])
    shades = bytes(255 if c == 0 else 40 if 0 < c <= 100 else 200 for c in (b if b < 128 else b - 256 for b in cells))
    world = Image.frombytes('L', (w, h), shades).transpose(Image.FLIP_TOP_BOTTOM).convert('RGB')
    world = world.resize((w * SCALE, h * SCALE), Image.NEAREST)
    draw = ImageDraw.Draw(world)

    def px(x: float, y: float) -> tuple[float, float]:
        return (x - ox) / res * SCALE, (h - (y - oy) / res) * SCALE

    legend = []
    if '/navigation/driven_path' in last:
        m = last['/navigation/driven_path']['message']
        base = frames.to_map(m['header']['frame_id'])
        if base and m['poses']:
            pts = [px(*apply(base, p['pose']['position']['x'], p['pose']['position']['y'])) for p in m['poses']]
            if len(pts) > 1:
                draw.line(pts, fill=(0, 160, 0), width=3)
            legend.append(((0, 160, 0), f'driven path ({len(pts)} poses)'))
    if '/navigation/plan' in last:
        m = last['/navigation/plan']['message']
        pts = [px(p['pose']['position']['x'], p['pose']['position']['y']) for p in m['poses']]
        if len(pts) > 1:
            draw.line(pts, fill=(230, 120, 0), width=2)
        legend.append(((230, 120, 0), f'planned path ({len(pts)} poses)'))
    if '/scan' in last:
        m = last['/scan']['message']
        laser = frames.to_map(m['header']['frame_id'])
        if laser:
            n = 0
            for i, r in enumerate(m['ranges']):
                if r is None or not math.isfinite(r) or not m['range_min'] <= r <= m['range_max']:
                    continue
                a = m['angle_min'] + i * m['angle_increment']
                x, y = px(*apply(laser, r * math.cos(a), r * math.sin(a)))
                draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=(220, 0, 0))
                n += 1
            legend.append(((220, 0, 0), f'scan ({n} returns)'))
    if '/navigation/pose' in last:
        m = last['/navigation/pose']['message']
        p, cov = m['pose']['pose'], m['pose']['covariance']
        x, y, th = p['position']['x'], p['position']['y'], quat_yaw(p['orientation'])
        # 2-sigma covariance ellipse (axis-aligned approximation of xx, yy), at least 3 px
        sx, sy = max(3, 2 * math.sqrt(max(cov[0], 0)) / res * SCALE), max(3, 2 * math.sqrt(max(cov[7], 0)) / res * SCALE)
        cx, cy = px(x, y)
        draw.ellipse((cx - sx, cy - sy, cx + sx, cy + sy), outline=(0, 90, 255), width=2)
        tip = px(x + 0.8 * math.cos(th), y + 0.8 * math.sin(th))
        draw.line([(cx, cy), tip], fill=(0, 90, 255), width=4)
        legend.append(((0, 90, 255), f'pose x={x:.2f} y={y:.2f} ({m["header"]["frame_id"]}), covariance'))
    if '/perception/people' in last:
        m = last['/perception/people']['message']
        base = frames.to_map(m['header']['frame_id'])
        if base:
            for p in m['poses']:
                x, y = px(*apply(base, p['position']['x'], p['position']['y']))
                draw.ellipse((x - 7, y - 7, x + 7, y + 7), outline=(160, 0, 200), width=3)
        legend.append(((160, 0, 200), f'people ({len(m["poses"])})'))

    camera = None
    if '/camera/view' in last:
        m = last['/camera/view']['message']
        camera = Image.open(io.BytesIO(base64.b64decode(m['data']['base64']))).convert('RGB')
    side = 480
    panel_h = max(world.height, 40 + (camera.height * side // camera.width if camera else 0) + 30 * len(legend) + 60)
    canvas = Image.new('RGB', (world.width + side + 30, panel_h + 40), (245, 245, 245))
    canvas.paste(world, (10, 30))
    text = ImageDraw.Draw(canvas)
    text.text((10, 8), f'3D panel: /map, /tf, /navigation/pose, /scan, paths, people  (server "{data["server"]}", '
                       'received through @foxglove/ws-protocol)', fill=(0, 0, 0))
    y = 30
    if camera is not None:
        shown = camera.resize((side, camera.height * side // camera.width))
        canvas.paste(shown, (world.width + 20, y))
        text.text((world.width + 20, y + shown.height + 4), 'Image panel: /camera/view (JPEG, faces blurred on the robot)',
                  fill=(0, 0, 0))
        y += shown.height + 30
    for colour, words in legend:
        text.rectangle((world.width + 20, y, world.width + 34, y + 14), fill=colour)
        text.text((world.width + 40, y + 1), words, fill=(0, 0, 0))
        y += 24
    canvas.save(out)
    print(f'written: {out} ({canvas.width}x{canvas.height})')


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
