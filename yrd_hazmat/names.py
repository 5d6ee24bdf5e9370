"""The names people read: provinces and alert types in Chinese (with English), and each
type's colour on charts and maps. One table for the report, the notifications and any
other text made for people."""

from __future__ import annotations

PROVINCES = {"SH": ("上海", "Shanghai"), "JS": ("江苏", "Jiangsu"), "ZJ": ("浙江", "Zhejiang"),
             "AH": ("安徽", "Anhui")}

TYPES = {  # AlertType -> (Chinese, colour)
    "SPEEDING": ("超速", "#d62728"),
    "ZONE_SPEEDING": ("区域超速", "#ff7f0e"),
    "FATIGUE_DRIVING": ("疲劳驾驶", "#9467bd"),
    "ZONE_VIOLATION": ("闯入禁行区", "#8c564b"),
    "ZONE_DWELL": ("区域滞留", "#e377c2"),
    "NO_VALID_PERMIT": ("无有效通行证", "#1f77b4"),
    "PERMIT_TIME_WINDOW": ("通行时段违规", "#17becf"),
    "ROUTE_DEVIATION": ("偏离路线", "#2ca02c"),
    "PROVINCE_HANDOVER": ("跨省交接", "#7f7f7f"),
    "HANDOVER_NOT_PERMITTED": ("跨省未许可", "#bcbd22"),
    "HANDOVER_EXPECTED": ("待交接", "#aec7e8"),
    "PROLONGED_STOP": ("长时间停车", "#98df8a"),
    "DEVICE_ALARM": ("终端报警", "#ff9896"),
    "SIGNAL_LOST": ("信号中断", "#c5b0d5"),
    "IMPLAUSIBLE_JUMP": ("位置跳变", "#c49c94"),
    "PLATFORM_ALARM": ("平台报警", "#f7b6d2"),
}


def type_name(alert_type: str) -> str:
    """The type's Chinese name (its code when it has none)."""
    return TYPES.get(alert_type, (alert_type, ""))[0]


def province_name(abbr: str | None) -> str:
    """The province's Chinese name; outside the region: 区外."""
    if abbr is None:
        return "区外"
    return PROVINCES.get(abbr, (abbr, ""))[0]
