"""Courier services: the interface stores hand parcels to riders through, and a simulated fleet."""

from zhongtai.integrations.couriers.provider import (
    COURIER_JOURNEY,
    CourierJob,
    CourierService,
    CourierStatus,
    CourierUpdate,
    DispatchRequest,
    DispatchTicket,
    GeoPoint,
)
from zhongtai.integrations.couriers.simulated import Rider, SimulatedCourierFleet
from zhongtai.integrations.signed_callbacks import CallbackRejected

__all__ = [
    "COURIER_JOURNEY",
    "CallbackRejected",
    "CourierJob",
    "CourierService",
    "CourierStatus",
    "CourierUpdate",
    "DispatchRequest",
    "DispatchTicket",
    "GeoPoint",
    "Rider",
    "SimulatedCourierFleet",
]
