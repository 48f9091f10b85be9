"""Development tools beside the runtime package: the tenant-fleet simulator, `make demo`, the HTML
report and the AWS export double. They import `tenantlake`; `tenantlake` never imports them."""
