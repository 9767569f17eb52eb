// Readable names of frame flags and PTE bits, for traces and the web page.

import {
  PG_ANON, PG_ANON_EXCLUSIVE, PG_INUSE, PG_KSM, PG_LARGE, PG_LOCKED, PMD_LEAF, PG_SHMEM, PG_SWAPCACHE, PG_ZERO, PTE_DEVEXCL_WRITE,
  PTE_DEVICE_EXCLUSIVE, PTE_DIRTY, PTE_PRESENT, PTE_SOFT_DIRTY, PTE_SPECIAL, PTE_SWAP, PTE_SWP_EXCLUSIVE,
  PTE_UFFD_WP, PTE_WRITE, PTE_YOUNG, PTE_PROTNONE,
} from './constants.js';

const FRAME_FLAGS: [number, string][] = [
  [PG_ZERO, 'zero'], [PG_ANON, 'anon'], [PG_ANON_EXCLUSIVE, 'anon-exclusive'], [PG_SHMEM, 'shmem'],
  [PG_KSM, 'ksm'], [PG_SWAPCACHE, 'swapcache'], [PG_LOCKED, 'locked'], [PG_LARGE, 'large'],
];

const PTE_BITS: [number, string][] = [
  [PTE_PRESENT, 'present'], [PTE_WRITE, 'write'], [PTE_DIRTY, 'dirty'], [PTE_YOUNG, 'young'],
  [PTE_SPECIAL, 'special'], [PTE_SOFT_DIRTY, 'soft-dirty'], [PTE_UFFD_WP, 'uffd-wp'], [PTE_SWAP, 'swap'],
  [PTE_SWP_EXCLUSIVE, 'swp-exclusive'], [PTE_DEVICE_EXCLUSIVE, 'device-exclusive'], [PTE_DEVEXCL_WRITE, 'devexcl-write'], [PTE_PROTNONE, 'protnone'], [PMD_LEAF, 'huge-pmd'],
];

export function frameFlagNames(flags: number): string[] {
  if (!(flags & PG_INUSE)) return ['free'];
  return FRAME_FLAGS.filter(([b]) => flags & b).map(([, n]) => n);
}

export function pteBitNames(bits: number): string[] {
  if (bits === 0) return ['none'];
  return PTE_BITS.filter(([b]) => bits & b).map(([, n]) => n);
}
