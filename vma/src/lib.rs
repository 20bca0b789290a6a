//! Proxmox VE VMA archives.
