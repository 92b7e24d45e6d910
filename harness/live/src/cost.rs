//! Approximate VM cost: hourly pay-as-you-go prices (USD, East US, 2024 list prices, VM
//! compute only, no disks or network). They are an **estimate** to make cost visible per
//! scenario and to compare sizes, not a bill: prices differ by region, change over time,
//! and Azure bills per minute of the VM existing (allocated), including its boot.

use std::fmt;

/// One VM size's approximate hourly price.
#[derive(Debug, Clone, Copy)]
pub struct VmPrice {
    pub size: &'static str,
    pub linux_usd_per_hour: f64,
    pub windows_usd_per_hour: f64,
}

/// Approximate prices, cheapest first.
pub const PRICES: &[VmPrice] = &[
    VmPrice {
        size: "Standard_B1ls",
        linux_usd_per_hour: 0.0052,
        windows_usd_per_hour: 0.0052,
    },
    VmPrice {
        size: "Standard_B1s",
        linux_usd_per_hour: 0.0104,
        windows_usd_per_hour: 0.0156,
    },
    VmPrice {
        size: "Standard_B1ms",
        linux_usd_per_hour: 0.0207,
        windows_usd_per_hour: 0.0291,
    },
    VmPrice {
        size: "Standard_B2ats_v2",
        linux_usd_per_hour: 0.0094,
        windows_usd_per_hour: 0.0186,
    },
    VmPrice {
        size: "Standard_B2s",
        linux_usd_per_hour: 0.0416,
        windows_usd_per_hour: 0.0496,
    },
    VmPrice {
        size: "Standard_B2ms",
        linux_usd_per_hour: 0.0832,
        windows_usd_per_hour: 0.0992,
    },
    VmPrice {
        size: "Standard_A1_v2",
        linux_usd_per_hour: 0.036,
        windows_usd_per_hour: 0.054,
    },
    VmPrice {
        size: "Standard_D2as_v5",
        linux_usd_per_hour: 0.086,
        windows_usd_per_hour: 0.178,
    },
    VmPrice {
        size: "Standard_D2s_v3",
        linux_usd_per_hour: 0.096,
        windows_usd_per_hour: 0.188,
    },
    VmPrice {
        size: "Standard_D2s_v5",
        linux_usd_per_hour: 0.096,
        windows_usd_per_hour: 0.188,
    },
];

/// Approximate hourly price of `size` (case-insensitive), if the table knows it.
pub fn hourly_price(size: &str, windows: bool) -> Option<f64> {
    PRICES
        .iter()
        .find(|p| p.size.eq_ignore_ascii_case(size))
        .map(|p| {
            if windows {
                p.windows_usd_per_hour
            } else {
                p.linux_usd_per_hour
            }
        })
}

/// VM minutes and their approximate price.
#[derive(Debug, Clone, PartialEq)]
pub struct CostEstimate {
    pub vm_size: String,
    pub windows: bool,
    /// VM-minutes (VMs x minutes each existed).
    pub vm_minutes: f64,
    /// `None` when the size is not in [`PRICES`].
    pub usd: Option<f64>,
}

impl CostEstimate {
    pub fn new(vm_size: &str, windows: bool, vm_minutes: f64) -> Self {
        let usd = hourly_price(vm_size, windows).map(|p| p * vm_minutes / 60.0);
        Self {
            vm_size: vm_size.to_string(),
            windows,
            vm_minutes,
            usd,
        }
    }
}

impl fmt::Display for CostEstimate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.usd {
            Some(usd) => write!(
                f,
                "~${usd:.4} ({:.1} VM-min of {})",
                self.vm_minutes, self.vm_size
            ),
            None => write!(
                f,
                "{:.1} VM-min of {} (price unknown)",
                self.vm_minutes, self.vm_size
            ),
        }
    }
}
