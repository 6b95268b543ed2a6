"""`dotbit-node status`: one screen about a running node, from one `getnodestatus` call."""
from __future__ import annotations

import json
import sys
import time

from wallet.nodeclient import NodeError


def _ago(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    if seconds < 172800:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


def _utc(epoch: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def _duration(seconds: int) -> str:
    d, rest = divmod(seconds, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    return (f"{d}d " if d else "") + f"{h:02d}:{m:02d}:{s:02d}"


def format_status(s: dict) -> str:
    sync = "synced" if not s["initialblockdownload"] and s["blocks"] >= s["headers"] else \
        f"syncing {100 * s['sync_progress']:.1f}%"
    lines = [
        f"network      {s['network']}",
        f"height       {s['blocks']} (headers {s['headers']}, {sync})",
        f"tip          {s['bestblockhash']}",
        f"last block   {_ago(s['seconds_since_block'])} (header time {_utc(s['tip_time'])})",
        f"name root    {s['name_root']}",
        "peers        " + ("p2p off" if s["peers"] is None else
                           f"{s['peers']} ({s['peers_inbound']} in, {s['peers'] - s['peers_inbound']} out)"
                           + (f", p2p port {s['p2p_port']}" if s.get("p2p_port") else "")),
        f"mempool      {s['mempool_txs']} txs, {s['mempool_bytes']:,} bytes",
        f"names        {s['names']}{'' if s['names_exact'] else '+'}",
        f"mining       {'on' if s['mining'] else 'off'}",
        f"JSON-RPC     port {s['rpc_port']}",
    ]
    r = s.get("resolver")
    if r is None:
        lines.append("resolver     off")
    else:
        lines.append(f"resolver     DNS {_port(r['dns_port'])}, HTTP {_port(r['http_port'])}")
        lines.append(f"resolver key {r['fingerprint']} (DNSKEY tag {r['key_tag']})")
        if "ca" in r:
            lines.append("CA           " + ("on" if r["ca"] else f"off: {r['ca_off']}"))
    if s.get("metrics_port"):
        lines.append(f"metrics      http://127.0.0.1:{s['metrics_port']}/metrics")
    lines.append(f"uptime       {_duration(s['uptime'])}")
    return "\n".join(lines)


def _port(p) -> str:
    return "off" if p is None else f"port {p}"


def print_status(client, out=sys.stdout, as_json: bool = False) -> int:
    try:
        s = client.call("getnodestatus")
    except NodeError as e:
        print(f"dotbit-node: status: no node answering at {client.url.geturl()} ({e.message}); "
              f"is it running with this --network/--datadir/--rpc-port?", file=sys.stderr)
        return 1
    finally:
        client.close()
    print(json.dumps(s, indent=2, sort_keys=True) if as_json else format_status(s), file=out)
    return 0
