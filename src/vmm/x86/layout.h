/* SPDX-License-Identifier: Apache-2.0 */
/* The guest-physical address map of a keel x86 VM: one place for every fixed address. */
#ifndef KEEL_VMM_X86_LAYOUT_H
#define KEEL_VMM_X86_LAYOUT_H

#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define GiB (1ull << 30)

/* Low memory, used while loading: real-mode area structures. */
#define LAYOUT_GDT	   0x0500ull /* boot GDT (5 entries) */
#define LAYOUT_BOOT_PARAMS 0x7000ull /* Linux zero page */
#define LAYOUT_MBI	   0x8000ull /* multiboot info and its strings (up to 0x9000) */
#define LAYOUT_MBI_END	   0x9000ull
#define LAYOUT_PML4	   0x9000ull /* identity page tables for the 64-bit Linux entry */
#define LAYOUT_PDPT	   0xa000ull
#define LAYOUT_PD	   0xb000ull  /* four page directories: 0..4 GiB in 2 MiB pages */
#define LAYOUT_CMDLINE	   0x20000ull /* kernel command line */
#define LAYOUT_CMDLINE_MAX 0x10000ull
#define LAYOUT_EBDA	   0x9fc00ull /* reserved, as on PCs: [EBDA, 640K) */
#define LAYOUT_LOWMEM_TOP  0xa0000ull
#define LAYOUT_BIOS	   0xe0000ull /* reserved: ACPI tables live here */
#define LAYOUT_BIOS_END	   0x100000ull
#define LAYOUT_ACPI	   LAYOUT_BIOS
#define LAYOUT_KERNEL	   0x100000ull /* protected-mode kernel load address */

/* The 32-bit hole: RAM stops at 3 GiB and continues at 4 GiB. */
#define LAYOUT_HOLE_START (3 * GiB)
#define LAYOUT_HIGH_RAM	  (4 * GiB)
/* Firmware VMs (mem_low_limit): SeaBIOS's ECAM is at 2.75 GiB; bigger VMs split at 2 GiB. */
#define LAYOUT_FW_HOLE_START 0xb0000000ull
#define LAYOUT_FW_LOW_SPLIT  (2 * GiB)
#define LAYOUT_IDENTITY_MAP  0xfeffc000ull /* KVM's private pages (VMX identity map, TSS) */
#define LAYOUT_TSS	     0xfeffd000ull
#define LAYOUT_IOAPIC	     0xfec00000ull
#define LAYOUT_LAPIC	     0xfee00000ull

/* PCI (pci.c): the 32-bit BAR window and ECAM (bus 0 only) in the hole; the 64-bit BAR
 * window starts at the first 1 GiB boundary above RAM (pci_window64_base()). */
#define LAYOUT_PCI_MMIO32      0xc0000000ull
#define LAYOUT_PCI_MMIO32_SIZE 0x20000000ull /* 512 MiB, up to the ECAM: where keel places BARs */
/* The host bridge decodes BARs wherever firmware puts them from LAYOUT_PCI_MMIO32 up to the
 * IOAPIC (OVMF: above its 256 MiB ECAM window at 0xF0000000), except where ECAM is. */
#define LAYOUT_PCI_MMIO32_END  0xfec00000ull
#define LAYOUT_PCIEXBAR_SIZE   0x10000000ull /* the ECAM window firmware reserves: 256 MiB */
#define LAYOUT_PCI_ECAM	       0xe0000000ull
#define LAYOUT_PCI_ECAM_SIZE   0x100000ull /* bus 0: 32 devices x 8 functions x 4 KiB */
#define LAYOUT_PCI_MMIO64_SIZE (16 * GiB)  /* where keel places 64-bit BARs */
/* The 64-bit window the host decodes also holds OVMF's: 32 GiB at the next 32 GiB boundary
 * (fw_cfg opt/ovmf/X-PciMmio64Mb pins that size), pci_window64_end(). */
#define LAYOUT_PCI_MMIO64_OVMF (32 * GiB)
/* OVMF's dynamic 64-bit aperture ends at 2^phys_bits, phys_bits at most 47 (pci_window64_end). */
#define LAYOUT_PHYS_BITS_MAX 47
#define PORT_PCI_CONF1	     0xcf8 /* CONFIG_ADDRESS at 0xcf8, CONFIG_DATA at 0xcfc */

/* Port I/O of the platform devices. */
#define PORT_PM_BASE	0x600 /* ACPI PM1a event (4), PM1a control (2), PM timer (4) */
#define PORT_PM1_EVT	(PORT_PM_BASE + 0)
#define PORT_PM1_CNT	(PORT_PM_BASE + 4)
#define PORT_PM_TMR	(PORT_PM_BASE + 8)
#define PORT_RESET	0xcf9
#define PORT_COM1	0x3f8
#define PORT_RTC	0x70
#define PORT_I8042_DATA 0x60
#define PORT_I8042_CMD	0x64
#define PORT_FW_CFG	0x510
#define PORT_DEBUG_EXIT 0xf4
#define PORT_DEBUGCON	0x402  /* firmware log (--firmware-debug) */
#define PORT_PCIHP	0xae00 /* the PCI hot plug controller (dev/pcihp_regs.h) */

/* Interrupt lines (ISA IRQ = GSI except the timer, which is routed to IOAPIC pin 2). */
#define IRQ_COM1 4
#define IRQ_RTC	 8
#define IRQ_SCI	 9

#endif
