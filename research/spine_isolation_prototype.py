#!/usr/bin/env python3
"""Prototype for issue 3 (solid, spine-only segmentation), kept for the next
session. Not part of the product or the tests.

Idea: threshold the smoothed CT, fill slice-wise holes (HU >= lo, area <= amax
mm^2), track the spinal canal (low-HU hole enclosed by bone in axial slices,
outliers dropped, gaps interpolated), then marker-controlled watershed on the
bone's distance transform: spine marker = bone within rs mm (in-plane) of the
canal, other marker = bone beyond ro mm; the split falls at the narrow joints
(costovertebral, sacroiliac).

Measured 2026-11-24 (Dice within the reference slices):
  totalseg-abdomen-3mm L1-S1: paper 0.58 -> 0.66 (hi 150) -> 0.82 (hi 100)
  verse012 L1-L3:             paper 0.68 -> 0.71 (hi 150) -> 0.67 (hi 100)
Upper bounds with an oracle isolation (mask restricted to the reference dilated
by one voxel): 0.88 (totalseg, threshold 100 + 2D fill) and 0.915 (verse,
80 HU, sigma 0.6): at 3 mm voxels the discs (80-100 HU) and partial volume
limit thresholding; reaching 0.90 needs disc/endplate handling.

usage: python3 research/spine_isolation_prototype.py   (needs ../shared/data)
"""
import nibabel as nib, numpy as np, time
from scipy import ndimage as ndi
from skimage.segmentation import watershed


def dice(a, b):
    return 2 * (a & b).sum() / (a.sum() + b.sum())


def load(case, labs):
    ct = nib.as_closest_canonical(nib.load(f"../shared/data/{case}/ct.nii.gz"))
    a = np.asarray(ct.dataobj, dtype=np.float32)
    sp = np.array(ct.header.get_zooms()[:3], float)
    l = np.asarray(nib.as_closest_canonical(nib.load(f"../shared/data/{case}/vertebrae.nii.gz")).dataobj)
    return a, sp, np.isin(l, labs), l


def canal_track(s, bone, sp, hu_max=60):
    # per axial slice: holes of bone with low HU, area 40..800 mm2
    nz=s.shape[2]; pts=[]
    for z in range(nz):
        b=bone[:,:,z]
        holes=ndi.binary_fill_holes(b)&~b
        lab,n=ndi.label(holes)
        best=None
        for i in range(1,n+1):
            m=lab==i; area=m.sum()*sp[0]*sp[1]
            if area<30 or area>800: continue
            hu=s[:,:,z][m].mean()
            if hu>hu_max: continue
            c=np.argwhere(m).mean(0)
            best=(area,c) if best is None or area>best[0] else best
        pts.append(None if best is None else best[1])
    zs=[z for z,p in enumerate(pts) if p is not None]
    if len(zs)<3: return None
    P=np.array([pts[z] for z in zs])
    # robust: median filter in x,y over neighbouring found points to drop outliers
    med=np.array([np.median(P[max(0,i-3):i+4],0) for i in range(len(zs))])
    ok=np.linalg.norm((P-med)*sp[:2],axis=1)<15
    zs=np.array(zs)[ok]; P=P[ok]
    cx=np.interp(np.arange(nz),zs,P[:,0]); cy=np.interp(np.arange(nz),zs,P[:,1])
    return cx,cy,zs

def segment(a,sp,P):
    s=ndi.gaussian_filter(a,P['sigma']/sp)
    bone=(s>=P['hi'])&(s<=3000)
    # solid fill: slice-wise holes with HU >= lo and area <= amax
    filled=bone.copy()
    amax=P['amax']/(sp[0]*sp[1])
    for z in range(a.shape[2]):
        sl=bone[:,:,z]
        holes=ndi.binary_fill_holes(sl)&~sl
        lab,n=ndi.label(holes)
        if n:
            sizes=np.bincount(lab.ravel()); ok=np.zeros(n+1,bool); ok[1:]=sizes[1:]<=amax
            filled[:,:,z]|=ok[lab]&(s[:,:,z]>=P['lo'])
    tr=canal_track(s,bone,sp)
    if tr is None: return filled, None
    cx,cy,zs=tr
    X,Y=np.meshgrid(np.arange(a.shape[0]),np.arange(a.shape[1]),indexing='ij')
    dist=np.zeros(a.shape,np.float32)
    for z in range(a.shape[2]):
        dist[:,:,z]=np.hypot((X-cx[z])*sp[0],(Y-cy[z])*sp[1])
    # anterior direction: RAS canonical -> +y is anterior
    edt=ndi.distance_transform_edt(filled,sampling=sp)
    markers=np.zeros(a.shape,np.int32)
    markers[filled&(dist<=P['rs'])]=1
    markers[filled&(dist>=P['ro'])]=2
    lab=watershed(-edt,markers,mask=filled)
    spine=lab==1
    return spine, tr

P=dict(sigma=0.6,hi=150,lo=40,amax=2500,rs=30,ro=65)
for k,v in [(None,None),('hi',120),('hi',100),('rs',40),('ro',55),('lo',80)]:
    Q=dict(P); 
    if k: Q[k]=v
    out=[]
    for case,labs in [('totalseg-abdomen-3mm',list(range(26,32))),('verse012-thoracolumbar',[20,21,22])]:
        a,sp,ref,l=load(case,labs)
        zs=np.nonzero(ref.any((0,1)))[0]; z0,z1=zs.min(),zs.max()
        t=time.time(); m,tr=segment(a,sp,Q)
        mm=m.copy(); mm[:,:,:z0]=0; mm[:,:,z1+1:]=0
        out.append((case[:6], round(dice(mm,ref),3), None if tr is None else len(tr[2])))
    print(k,v,out)
