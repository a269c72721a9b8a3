"""The demo chain's assortment: category tree, brands, product names, specs and price bands."""

from __future__ import annotations

from dataclasses import dataclass

from zhongtai.catalog.models import ProductKind


@dataclass(frozen=True)
class Item:
    """One kind of product: its name and its shelf price band in fen (per 500 g when weighed)."""

    name: str
    low: int
    high: int
    specs: tuple[str, ...] = ()  # variants of the name, e.g. flavours; overrides the leaf's


@dataclass(frozen=True)
class Leaf:
    """A leaf category with what it sells."""

    code: str
    name: str
    kind: ProductKind
    share: int  # relative share of the SKU count
    items: tuple[Item, ...]
    brands: tuple[str, ...] = ()
    specs: tuple[str, ...] = ()
    shelf_life: tuple[int, int] | None = None  # days, inclusive range


ROOTS: tuple[tuple[str, str], ...] = (
    ("FRESH", "生鲜"),
    ("GROCERY", "食品杂货"),
    ("DAILY", "日用百货"),
    ("APPAREL", "服装"),
)

FRESH_ROOT = "FRESH"
APPAREL_ROOT = "APPAREL"

LEAVES: dict[str, tuple[Leaf, ...]] = {
    "FRESH": (
        Leaf("FRESH-FRUIT", "水果", ProductKind.FRESH, 6, (
            Item("红富士苹果", 598, 1298), Item("库尔勒香梨", 698, 1298),
            Item("海南金煌芒", 798, 1598), Item("赣南脐橙", 498, 998),
            Item("智利车厘子", 3980, 8980), Item("阳光玫瑰葡萄", 1598, 3980),
            Item("麒麟西瓜", 198, 498), Item("徐香猕猴桃", 998, 1998),
            Item("云南蓝莓", 2980, 5980), Item("丹东草莓", 1998, 4980),
        ), specs=("", "（精选）", "（特级）", "（家庭装）"), shelf_life=(5, 10)),
        Leaf("FRESH-VEG", "蔬菜", ProductKind.FRESH, 6, (
            Item("上海青", 298, 698), Item("西兰花", 498, 898), Item("番茄", 398, 798),
            Item("黄瓜", 298, 598), Item("土豆", 198, 398), Item("胡萝卜", 198, 398),
            Item("菠菜", 398, 798), Item("茭白", 598, 1098), Item("山药", 598, 1298),
            Item("香菇", 798, 1598),
        ), specs=("", "（有机）", "（本地）"), shelf_life=(2, 7)),
        Leaf("FRESH-MEAT", "肉禽", ProductKind.FRESH, 4, (
            Item("黑猪五花肉", 2480, 3980), Item("猪肋排", 2980, 4480),
            Item("冷鲜鸡腿", 998, 1680), Item("雪花牛肉片", 5980, 9980),
            Item("羊肉卷", 3980, 6980), Item("三黄鸡", 1480, 2280),
        ), specs=("", "（冷鲜）", "（精选）"), shelf_life=(3, 5)),
        Leaf("FRESH-SEAFOOD", "水产", ProductKind.FRESH, 4, (
            Item("鲜活基围虾", 3980, 6980), Item("大黄鱼", 2980, 5980),
            Item("鲈鱼", 2480, 3980), Item("阳澄湖大闸蟹", 9800, 19800),
            Item("花蛤", 998, 1980), Item("带鱼段", 2980, 4980),
        ), specs=("", "（鲜活）", "（冰鲜）"), shelf_life=(2, 3)),
    ),
    "GROCERY": (
        Leaf("GROCERY-OIL", "粮油", ProductKind.STANDARD, 8, (
            Item("东北大米 5kg", 3990, 7990, ("", "特级", "有机")),
            Item("泰国香米 5kg", 5990, 9990, ("", "特级")),
            Item("玉米油 5L", 5990, 9990, ("", "非转基因")),
            Item("花生油 5L", 9990, 15990, ("", "压榨一级")),
            Item("高筋面粉 2.5kg", 1990, 3290), Item("挂面 1kg", 690, 1590, ("", "鸡蛋")),
        ), brands=("金龙鱼", "福临门", "鲁花", "五常", "香满园"), shelf_life=(180, 540)),
        Leaf("GROCERY-SNACK", "零食", ProductKind.STANDARD, 12, (
            Item("薯片 104g", 690, 990, ("原味", "黄瓜味", "番茄味", "香辣味")),
            Item("每日坚果 750g", 8990, 13990), Item("手撕面包 1kg", 1990, 3290),
            Item("牛肉干 200g", 3990, 6990, ("五香", "香辣", "黑胡椒")),
            Item("夹心饼干 388g", 1290, 2290, ("巧克力味", "草莓味", "香草味")),
            Item("巧克力 100g", 1590, 2990, ("黑", "牛奶", "榛仁")),
            Item("海苔 40g", 990, 1990, ("原味", "芝麻")), Item("话梅 180g", 890, 1590),
        ), brands=("三只松鼠", "良品铺子", "旺旺", "乐事", "奥利奥", "百草味"),
            shelf_life=(180, 365)),
        Leaf("GROCERY-DRINK", "饮料", ProductKind.STANDARD, 12, (
            Item("饮用天然水 550ml", 150, 250), Item("饮用天然水 550ml×24", 2990, 3990),
            Item("乌龙茶 500ml", 450, 690, ("无糖", "低糖")),
            Item("纯牛奶 250ml×12", 4490, 6990, ("", "有机", "高钙")),
            Item("橙汁 1L", 990, 1990, ("", "NFC ")), Item("气泡水 480ml×15", 4990, 7990),
            Item("冰红茶 1L", 390, 590), Item("酸奶 200g×6", 1990, 3290, ("原味", "低脂")),
            Item("椰子水 1L", 1290, 2290),
        ), brands=("农夫山泉", "康师傅", "伊利", "蒙牛", "元气森林", "统一", "光明"),
            shelf_life=(21, 365)),
        Leaf("GROCERY-SEASONING", "调味", ProductKind.STANDARD, 8, (
            Item("生抽 500ml", 790, 1590, ("", "零添加", "特级")),
            Item("老抽 500ml", 790, 1590, ("", "草菇")), Item("蚝油 510g", 1090, 1990),
            Item("米醋 500ml", 590, 1290, ("", "零添加")), Item("料酒 500ml", 490, 990),
            Item("豆瓣酱 500g", 990, 1690),
        ), brands=("海天", "李锦记", "恒顺", "太太乐", "老恒和", "鼎丰"),
            shelf_life=(365, 720)),
    ),
    "DAILY": (
        Leaf("DAILY-CLEAN", "清洁", ProductKind.STANDARD, 9, (
            Item("洗衣液 3kg", 3990, 6990, ("", "除菌", "薰衣草香")),
            Item("洗洁精 1.5kg", 1290, 2490, ("", "柠檬")),
            Item("洗衣凝珠 52颗", 4990, 7990), Item("厨房湿巾 80片", 990, 1990),
            Item("地板清洁剂 2L", 2490, 3990, ("", "除菌")), Item("垃圾袋 100只", 990, 1690),
        ), brands=("蓝月亮", "立白", "超能", "奥妙", "威猛先生", "妙洁")),
        Leaf("DAILY-CARE", "个护", ProductKind.STANDARD, 9, (
            Item("洗发水 750ml", 3990, 8990, ("", "去屑", "控油")),
            Item("沐浴露 1L", 2990, 6990, ("", "清爽", "滋润")),
            Item("牙膏 180g", 990, 2990, ("", "美白", "抗敏")),
            Item("电动牙刷刷头 4支", 5990, 12990), Item("护手霜 50ml", 1990, 4990),
            Item("洗面奶 120g", 2990, 8990, ("", "氨基酸")),
        ), brands=("云南白药", "舒客", "海飞丝", "六神", "百雀羚", "自然堂")),
        Leaf("DAILY-PAPER", "纸品", ProductKind.STANDARD, 7, (
            Item("抽纸 3层100抽×18包", 3990, 5990, ("", "无香")),
            Item("卷纸 4层140g×27卷", 4990, 7990, ("", "加厚")),
            Item("湿巾 80片×3包", 1990, 3490), Item("厨房纸 75节×4卷", 1990, 2990),
        ), brands=("维达", "清风", "心相印", "洁柔", "舒洁")),
    ),
    "APPAREL": (
        Leaf("APPAREL-MEN", "男装", ProductKind.APPAREL, 6, (
            Item("纯棉圆领T恤", 7900, 15900), Item("商务休闲衬衫", 19900, 39900),
            Item("弹力休闲裤", 19900, 35900), Item("轻薄羽绒服", 39900, 79900),
            Item("针织开衫", 25900, 45900),
        ), brands=("申城衣橱", "弄堂制造", "海派绅士")),
        Leaf("APPAREL-WOMEN", "女装", ProductKind.APPAREL, 6, (
            Item("真丝衬衫", 29900, 59900), Item("高腰阔腿裤", 19900, 35900),
            Item("羊毛大衣", 59900, 129900), Item("碎花连衣裙", 25900, 49900),
            Item("针织毛衣", 19900, 39900),
        ), brands=("申城衣橱", "梧桐里", "静安 Studio")),
        Leaf("APPAREL-KIDS", "童装", ProductKind.APPAREL, 3, (
            Item("儿童卫衣", 9900, 19900), Item("儿童牛仔裤", 9900, 17900),
            Item("儿童羽绒服", 29900, 49900), Item("儿童睡衣套装", 7900, 15900),
        ), brands=("小梧桐", "申城衣橱 Kids")),
    ),
}  # fmt: skip

CATEGORY_NAMES = {
    **dict(ROOTS),
    **{leaf.code: leaf.name for leaves in LEAVES.values() for leaf in leaves},
}

ORIGINS = ("山东", "云南", "海南", "新疆", "浙江", "江苏", "崇明", "福建", "东北", "宁夏")

ADULT_SIZES = ("S", "M", "L", "XL", "XXL")
KIDS_SIZES = ("100", "110", "120", "130", "140", "150")
#: Colour name and the short code used in SKU codes.
COLOURS = (
    ("黑色", "BK"),
    ("白色", "WH"),
    ("藏青", "NV"),
    ("灰色", "GY"),
    ("卡其", "KH"),
    ("米白", "IV"),
    ("酒红", "WR"),
    ("浅蓝", "LB"),
    ("粉色", "PK"),
)
