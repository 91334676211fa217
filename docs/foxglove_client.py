"""The independent client of docs/foxglove.md: lists the channels of a Foxglove WebSocket server and
decodes what arrives with the advertised schemas (mcap-ros2-support).

    python docs/foxglove_client.py PORT SECONDS
"""
import asyncio
import json
import struct
import sys

import websockets
from mcap_ros2._dynamic import generate_dynamic


async def main(port: int, seconds: float) -> None:
    seen: dict = {}
    async with websockets.connect(f'ws://127.0.0.1:{port}', subprotocols=['foxglove.sdk.v1', 'foxglove.websocket.v1'],
                                  open_timeout=10) as ws:
        print(f'connected: subprotocol {ws.subprotocol}')
        chans: dict = {}
        dec: dict = {}
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            try:
                frame = await asyncio.wait_for(ws.recv(), timeout=max(0.01, end - loop.time()))
            except asyncio.TimeoutError:
                break
            if isinstance(frame, str):
                m = json.loads(frame)
                if m['op'] == 'serverInfo':
                    print(f"serverInfo: name={m.get('name')!r}")
                if m['op'] == 'advertise':
                    subs = []
                    for c in m['channels']:
                        chans[c['id']] = c
                        dec[c['id']] = generate_dynamic(c['schemaName'], c['schema'])[c['schemaName']]
                        subs.append({'id': c['id'], 'channelId': c['id']})
                    await ws.send(json.dumps({'op': 'subscribe', 'subscriptions': subs}))
            elif frame[0] == 1:
                sid, _ = struct.unpack_from('<IQ', frame, 1)
                c = chans[sid]
                n, _ = seen.get(c['topic'], (0, None))
                seen[c['topic']] = (n + 1, dec[sid](frame[13:]))
    print(f'{"topic":32} {"schema":44} {"msgs":>5}  sample')
    for c in sorted(chans.values(), key=lambda c: c['topic']):
        n, msg = seen.get(c['topic'], (0, None))
        print(f"{c['topic']:32} {c['schemaName']:44} {n:5d}  {describe(c['schemaName'], msg)}")


def describe(name: str, m) -> str:
    if m is None:
        return '-'
    if name.endswith('OccupancyGrid'):
        return f'{m.info.width}x{m.info.height} cells @ {m.info.resolution} m, frame {m.header.frame_id}'
    if name.endswith('TFMessage'):
        return ', '.join(f'{t.header.frame_id}->{t.child_frame_id}' for t in m.transforms)
    if name.endswith('PoseWithCovarianceStamped'):
        p = m.pose.pose.position
        return f'x={p.x:.2f} y={p.y:.2f} ({m.header.frame_id}), cov xx={m.pose.covariance[0]:.4f}'
    if name.endswith('LaserScan'):
        return f'{len(m.ranges)} rays, frame {m.header.frame_id}, range_max {m.range_max}'
    if name.endswith('Odometry'):
        p = m.pose.pose.position
        return f'x={p.x:.2f} y={p.y:.2f} ({m.header.frame_id})'
    if name.endswith('Path'):
        return f'{len(m.poses)} poses ({m.header.frame_id})'
    if name.endswith('BaseSafety'):
        return f'latched={m.latched} reason={m.reason!r}'
    if name.endswith('String'):
        return repr(m.data)
    if name.endswith('PoseArray'):
        return f'{len(m.poses)} people'
    return type(m).__name__


if __name__ == '__main__':
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2])))
