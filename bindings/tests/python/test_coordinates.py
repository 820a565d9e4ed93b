"""GCJ-02 at the edge, through the generated Python bindings: a position from a
Chinese map SDK becomes the WGS-84 one gridsync keeps; a bad one is refused."""

import pytest

import gridsync_ffi as gs


def test_a_gcj02_position_becomes_wgs84_and_a_bad_one_is_refused():
    # Shanghai, a published pair of the transform (WGS-84 → GCJ-02).
    wgs = gs.wgs84_from_gcj02(31.17530398364597, 121.531541859215)
    assert abs(wgs.lat - 31.1774276) < 1e-7 and abs(wgs.lon - 121.5272106) < 1e-7
    # Outside China nothing moves.
    paris = gs.wgs84_from_gcj02(48.8566, 2.3522)
    assert (paris.lat, paris.lon) == (48.8566, 2.3522)
    with pytest.raises(gs.GridsyncError.InvalidInput):
        gs.wgs84_from_gcj02(91.0, 120.0)
