"""Distances between points on the earth, and whether a customer is in a delivery radius."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhongtai.stores.rules import EARTH_MEAN_RADIUS_M, distance_m, within_radius

PEOPLES_SQUARE = (31.2304, 121.4737)
ORIENTAL_PEARL = (31.2397, 121.4998)


def test_one_degree_of_longitude_on_the_equator_is_about_111_km() -> None:
    assert distance_m(0, 0, 0, 1) == pytest.approx(111_195.08, abs=0.5)


def test_pole_to_pole_is_half_the_circumference() -> None:
    assert distance_m(90, 0, -90, 0) == pytest.approx(math.pi * EARTH_MEAN_RADIUS_M)


def test_peoples_square_to_the_oriental_pearl_tower_is_about_2_7_km() -> None:
    assert distance_m(*PEOPLES_SQUARE, *ORIENTAL_PEARL) == pytest.approx(2_670, rel=0.02)


def test_a_customer_is_in_the_radius_up_to_and_including_its_edge() -> None:
    d = distance_m(*PEOPLES_SQUARE, *ORIENTAL_PEARL)
    assert within_radius(*PEOPLES_SQUARE, *ORIENTAL_PEARL, 3_000)
    assert within_radius(*PEOPLES_SQUARE, *ORIENTAL_PEARL, d)
    assert not within_radius(*PEOPLES_SQUARE, *ORIENTAL_PEARL, 2_000)


latitudes = st.floats(min_value=-90, max_value=90)
longitudes = st.floats(min_value=-180, max_value=180)


@given(latitudes, longitudes, latitudes, longitudes)
def test_distance_is_symmetric_and_bounded(
    lat1: float, lng1: float, lat2: float, lng2: float
) -> None:
    there = distance_m(lat1, lng1, lat2, lng2)
    assert there == pytest.approx(distance_m(lat2, lng2, lat1, lng1), abs=1e-6)
    assert 0 <= there <= math.pi * EARTH_MEAN_RADIUS_M + 1e-6


@given(latitudes, longitudes)
def test_a_point_is_at_distance_zero_from_itself(lat: float, lng: float) -> None:
    assert distance_m(lat, lng, lat, lng) == 0
    assert within_radius(lat, lng, lat, lng, 0)


@given(latitudes, longitudes, latitudes, longitudes, latitudes, longitudes)
def test_distance_obeys_the_triangle_inequality(
    lat1: float, lng1: float, lat2: float, lng2: float, lat3: float, lng3: float
) -> None:
    direct = distance_m(lat1, lng1, lat3, lng3)
    via = distance_m(lat1, lng1, lat2, lng2) + distance_m(lat2, lng2, lat3, lng3)
    assert direct <= via + 1e-6
