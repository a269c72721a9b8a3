"""The demo chain's geography: its Shanghai stores, DC and warehouse, with real-looking sites."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class StoreFormat(StrEnum):
    """The trading format decides opening hours, capabilities and in-store services."""

    SUPERMARKET = "supermarket"
    CONVENIENCE = "convenience"
    DEPARTMENT = "department"


@dataclass(frozen=True)
class Site:
    code: str
    name: str
    region: str
    address: str
    latitude: float
    longitude: float
    format: StoreFormat = StoreFormat.SUPERMARKET
    delivery: bool = False
    ship_from_store: bool = False
    overnight: bool = False


CITY = "上海"
TIMEZONE = "Asia/Shanghai"
#: Shanghai's administrative area fits inside this box (south, west, north, east).
SHANGHAI_BOUNDS = (30.67, 120.85, 31.88, 122.20)

STORES: tuple[Site, ...] = (
    Site("SH001", "中台超市 南京东路店", "黄浦区", "南京东路 353 号", 31.2375, 121.4845,
         delivery=True),
    Site("SH002", "中台超市 静安寺店", "静安区", "南京西路 1699 号", 31.2245, 121.4458,
         delivery=True),
    Site("SH003", "中台超市 徐家汇店", "徐汇区", "漕溪北路 88 号", 31.1925, 121.4372,
         delivery=True, ship_from_store=True),
    Site("SH004", "中台超市 陆家嘴店", "浦东新区", "东方路 796 号", 31.2300, 121.5210,
         delivery=True),
    Site("SH005", "中台百货 淮海中路店", "黄浦区", "淮海中路 333 号", 31.2220, 121.4690,
         format=StoreFormat.DEPARTMENT, ship_from_store=True),
    Site("SH006", "中台超市 中山公园店", "长宁区", "长宁路 1018 号", 31.2195, 121.4180,
         delivery=True),
    Site("SH007", "中台超市 长风店", "普陀区", "大渡河路 196 号", 31.2263, 121.3930),
    Site("SH008", "中台超市 四川北路店", "虹口区", "四川北路 1318 号", 31.2583, 121.4826,
         delivery=True),
    Site("SH009", "中台超市 五角场店", "杨浦区", "淞沪路 77 号", 31.3005, 121.5135,
         delivery=True, ship_from_store=True, overnight=True),
    Site("SH010", "中台超市 莘庄店", "闵行区", "莘松路 958 号", 31.1115, 121.3850),
    Site("SH011", "中台便利 人民广场店", "黄浦区", "西藏中路 268 号", 31.2335, 121.4760,
         format=StoreFormat.CONVENIENCE, delivery=True),
    Site("SH012", "中台超市 宝山万达店", "宝山区", "一二八纪念路 988 号", 31.3225, 121.4470),
)  # fmt: skip

DC = Site("SHDC01", "中台嘉定配送中心", "嘉定区", "叶城路 1288 号", 31.3460, 121.2480)
WAREHOUSE = Site("SHWH01", "中台松江电商仓", "松江区", "民强路 1525 号", 31.0270, 121.2300)

#: Where extra stores open when more than the named ones are asked for: centre and streets.
DISTRICTS: tuple[tuple[str, float, float, tuple[str, ...]], ...] = (
    ("黄浦区", 31.2290, 121.4800, ("河南南路", "复兴东路", "中华路", "陆家浜路")),
    ("静安区", 31.2450, 121.4480, ("江宁路", "延平路", "共和新路", "大统路")),
    ("徐汇区", 31.1790, 121.4370, ("天钥桥路", "宜山路", "龙华中路", "田林路")),
    ("长宁区", 31.2140, 121.4000, ("天山路", "仙霞路", "虹桥路", "古北路")),
    ("普陀区", 31.2490, 121.3980, ("曹杨路", "真北路", "武宁路", "梅川路")),
    ("虹口区", 31.2690, 121.4900, ("曲阳路", "大连西路", "东江湾路", "西江湾路")),
    ("杨浦区", 31.2800, 121.5250, ("控江路", "黄兴路", "平凉路", "国定路")),
    ("浦东新区", 31.2210, 121.5440, ("张杨路", "浦建路", "锦绣路", "金桥路", "高科西路")),
    ("闵行区", 31.1130, 121.3820, ("七莘路", "都市路", "虹莘路", "春申路")),
    ("宝山区", 31.4050, 121.4890, ("牡丹江路", "友谊路", "共康路", "淞滨路")),
    ("嘉定区", 31.3750, 121.2650, ("城中路", "塔城路", "博乐路", "沪宜公路")),
    ("松江区", 31.0320, 121.2280, ("中山中路", "人民北路", "荣乐东路", "谷阳北路")),
    ("青浦区", 31.1510, 121.1240, ("公园路", "外青松公路", "城中东路")),
    ("奉贤区", 30.9180, 121.4740, ("南桥路", "解放东路", "百齐路")),
)

#: Delivery is piloted in these regions first (and for fresh goods chain-wide).
DELIVERY_PILOT_REGIONS = ("静安区", "徐汇区")
