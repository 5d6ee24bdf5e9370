"""Emergency response across the four provinces: resources and the nearest responders."""
