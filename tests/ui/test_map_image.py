"""The store map as a picture for the pages: map_server's cell values, north up, bad grids refused."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from retail_ui.map_image import MapImageError, grid_to_png, map_info


def test_cells_become_grey_levels_with_the_origin_row_at_the_bottom():
    cells = [0, 100, -1,       # row 0: at the map origin, the bottom of the picture
             50, 65, 0]
    image = cv2.imdecode(np.frombuffer(grid_to_png(cells, 3, 2), np.uint8), cv2.IMREAD_GRAYSCALE)
    assert image.shape == (2, 3)
    assert list(image[1]) == [255, 70, 205] and list(image[0]) == [255, 70, 255]


@pytest.mark.parametrize('cells, width, height', [([0] * 5, 3, 2), ([0] * 6, 0, 6), ([], 0, 0)])
def test_a_grid_that_does_not_match_its_size_is_refused(cells, width, height):
    with pytest.raises(MapImageError, match='cells'):
        grid_to_png(cells, width, height)


def test_geometry_for_the_pages_in_metres():
    assert map_info(620, 420, 0.05, -1.0, -2.0) == {'width': 620, 'height': 420, 'resolution': 0.05,
                                                    'origin': [-1.0, -2.0], 'width_m': 31.0, 'height_m': 21.0}
