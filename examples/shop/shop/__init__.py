"""The example shop: orders, inventory, payments and notifications, run by `minga up`."""
