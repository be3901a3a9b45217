DROP TABLE private.phone_prefix_regions, private.phone_prefix_zones;
