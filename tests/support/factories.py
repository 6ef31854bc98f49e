"""Deterministic test data: valid submissions and the ways channel systems get them wrong."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

CHANNELS = ["hotline", "app", "web", "store", "sms", "email", "wechat", "regulator"]
TEXTS = [
    "家里手机信号很差，经常打不通电话",
    "本月话费多扣了50元，要求退还",
    "没有订购的视频会员每月扣费15元，要求退订退款",
    "申请携号转网被拒绝，说我有合约未到期",
    "Home broadband keeps dropping every evening, technician never came",
    "营业厅工作人员态度恶劣",
    "Received a fraud call pretending to be customer service",
    "合约机屏幕出现坏点，要求换机",
]
REGIONS = [("广东", "深圳", "南山"), ("广东", "广州", "天河"), ("浙江", "杭州", "西湖"), ("北京", "北京", "朝阳")]


def submission(i: int, now: datetime | None = None, **overrides) -> dict:
    now = now or datetime.now(UTC)
    province, city, district = REGIONS[i % len(REGIONS)]
    obj = {
        "channel": CHANNELS[i % len(CHANNELS)],
        "channel_ref": f"REF-{i:06d}",
        "text": f"{TEXTS[i % len(TEXTS)]} (#{i})",
        "customer": {"msisdn": f"13{(i % 9) + 1}{i:08d}", "tier": ["standard", "silver", "gold"][i % 3]},
        "region": {"province": province, "city": city, "district": district},
        "occurred_at": (now - timedelta(minutes=i % 600)).isoformat(),
    }
    obj.update(overrides)
    return obj


def malformed_line(i: int, now: datetime | None = None) -> str:
    """One of seven kinds of bad line, chosen by ``i``."""
    now = now or datetime.now(UTC)
    base = submission(100000 + i, now)
    kind = i % 7
    if kind == 0:
        return '{"channel": "app", "text": "truncated'
    if kind == 1:
        base["customer"]["msisdn"] = "12345"
    elif kind == 2:
        base["channel"] = "carrier-pigeon"
    elif kind == 3:
        del base["text"]
    elif kind == 4:
        base["occurred_at"] = (now + timedelta(days=3)).isoformat()
    elif kind == 5:
        base["text"] = "长" * 5000
    else:
        base["region"] = "Shenzhen"
    return json.dumps(base, ensure_ascii=False)


def mixed_lines(n_valid: int, n_bad: int, seed: int = 7, now: datetime | None = None) -> tuple[list[str], list[int]]:
    """``n_valid`` good lines with ``n_bad`` bad ones spread in; returns the lines and the bad line numbers (1-based)."""
    rng = random.Random(seed)
    lines = [json.dumps(submission(i, now), ensure_ascii=False) for i in range(n_valid)]
    positions = sorted(rng.sample(range(n_valid + n_bad), n_bad))
    for j, pos in enumerate(positions):
        lines.insert(pos, malformed_line(j, now))
    return lines, [p + 1 for p in positions]
