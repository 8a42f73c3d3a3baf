"""Link-layer helpers: address announcements, duplicate-address probes, interfaces."""
